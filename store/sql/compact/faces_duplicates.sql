-- faces_duplicates: keys (raw.faces' primary key) that occur more than once in the files.
select run_id, sample_key, role, count(*) as n
from read_parquet($files, union_by_name = true, hive_partitioning = false)
group by run_id, sample_key, role
having count(*) > 1
order by run_id, sample_key, role
limit 5
