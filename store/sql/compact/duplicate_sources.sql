-- duplicate_sources: the files (of one table) that hold rows of one sample; names the
-- directories in the error when a key occurs twice.
select distinct filename
from read_parquet($files, union_by_name = true, filename = true, hive_partitioning = false)
where run_id = $run_id and sample_key = $sample_key
order by filename
