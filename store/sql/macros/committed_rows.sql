-- committed_rows(root, name): the rows of one per-sample table (name = 'samples', 'maps' or
-- 'faces', i.e. the files <name>.parquet) of the store at root: committed sample directories
-- minus the samples already compacted, plus the segments.  The views samples, maps and faces
-- are this macro over their file name.
--   * sample directories: run_id / sample_key come from the hive path run=<id>/sample=<key>
--     (equal to the values in the files), so `where run_id = ... and sample_key = ...` reads
--     one file;
--   * a sample directory whose sample was merged into a segment (store_manifest, an interrupted
--     compaction) is hidden: the segment wins.
create or replace macro committed_rows(root, name) as table
with sample_dirs as (
    select run as run_id, sample as sample_key, * exclude (run_id, sample_key, run, sample)
    from read_parquet(
        root || '/data/*/sample=*/' || name || '.parquet',
        hive_partitioning = true, hive_types = {'run': VARCHAR, 'sample': VARCHAR},
        union_by_name = true
    )
),

segments as (
    select run as run_id, * exclude (run_id, run, segment)
    from read_parquet(
        root || '/data/*/segment=*/' || name || '.parquet',
        hive_partitioning = true, hive_types = {'run': VARCHAR, 'segment': VARCHAR},
        union_by_name = true
    )
),

compacted as (
    select run_id, sample_key from store_manifest where kind = 'sample'
),

final as (
    select * from sample_dirs
    where not exists (
        select 1 from compacted as c
        where c.run_id = sample_dirs.run_id and c.sample_key = sample_dirs.sample_key
    )
    union all by name
    select * from segments
)

select * from final;
