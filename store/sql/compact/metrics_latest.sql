-- metrics_latest: the latest row per (run_id, sample_key, name, model) among the samples' own
-- metrics and the late-metrics directories merged (ties: the last file by path), as the
-- metrics view does.
select * exclude (filename)
from read_parquet($files, union_by_name = true, filename = true, hive_partitioning = false)
qualify row_number() over (
    partition by run_id, sample_key, name, model order by created_at desc, filename desc
) = 1
