-- sites_first: one row per (run_id, site): writers repeat a site with the first sample each of
-- them commits; the row of the first file (by path) is kept, as the sites view does.
select * exclude (filename)
from read_parquet($files, union_by_name = true, filename = true, hive_partitioning = false)
qualify row_number() over (partition by run_id, site order by filename) = 1
