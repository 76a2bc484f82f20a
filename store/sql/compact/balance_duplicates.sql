-- balance_duplicates: keys (raw.balance's primary key) that occur more than once in the files.
select run_id, sample_key, site, step, branch, count(*) as n
from read_parquet($files, union_by_name = true, hive_partitioning = false)
group by run_id, sample_key, site, step, branch
having count(*) > 1
order by run_id, sample_key, site, step, branch
limit 5
