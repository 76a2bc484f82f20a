-- samples_duplicates: keys (raw.samples' primary key) that occur more than once in the files.
-- Reads the key columns only; the hash table spills to the connection's temp_directory.
select run_id, sample_key, count(*) as n
from read_parquet($files, union_by_name = true, hive_partitioning = false)
group by run_id, sample_key
having count(*) > 1
order by run_id, sample_key
limit 5
