-- maps_duplicates: keys (raw.maps' unique key) that occur more than once in the files.
-- Reads the key columns only (the typed empty table gives files written before migration 0005
-- their stream / word columns); the hash table spills to the connection's temp_directory.
with source as (
    select run_id, sample_key, site, step, branch, stream, word, token, head, stage from raw.maps
    union all by name
    select * from read_parquet($files, union_by_name = true, hive_partitioning = false)
)

select run_id, sample_key, site, step, branch, coalesce(stream, 'id') as stream, word, token, head, stage,
       count(*) as n
from (select run_id, sample_key, site, step, branch, stream, word, token, head, stage from source)
group by run_id, sample_key, site, step, branch, coalesce(stream, 'id'), word, token, head, stage
having count(*) > 1
order by run_id, sample_key, site, step, branch, stream, word, token, head, stage
limit 5
