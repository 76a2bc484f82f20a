-- committed_rows(name): the rows of one per-sample table (name = 'samples', 'maps' or 'faces',
-- i.e. the files <name>.parquet) of the store: committed sample directories minus the samples
-- of active segments, plus the active segments.  The views samples, maps and faces are this
-- macro over their file name.
--   * sample directories: run_id / sample_key come from the hive path run=<id>/sample=<key>
--     (equal to the values in the files), so `where run_id = ... and sample_key = ...` reads
--     one file;
--   * a segment is active once its manifest's compacted_at (UTC) has passed: the compactor
--     sets it a few seconds after the moment it publishes the segment, so every file listing
--     of a query that starts after compacted_at sees the segment, whatever the order in which
--     DuckDB lists the globs.  Before that the segment is ignored and its samples come from
--     their directories; after it the directories it merged are hidden (they stay on disk for
--     the retention period, so a query that listed them can still read them).  A sample is
--     therefore never shown twice and never missing.
create or replace macro committed_rows(name) as table
with active as materialized (
    select run_id, segment_id, sample_key
    from read_parquet(
        store_root() || '/data/*/segment=*/manifest.parquet', union_by_name = true, hive_partitioning = false
    )
    where epoch_ms(compacted_at) <= epoch_ms(now())
),

sample_dirs as (
    select run as run_id, sample as sample_key, * exclude (run_id, sample_key, run, sample)
    from read_parquet(
        store_root() || '/data/*/sample=*/' || name || '.parquet',
        hive_partitioning = true, hive_types = {'run': VARCHAR, 'sample': VARCHAR},
        union_by_name = true
    )
),

segments as (
    select run as run_id, segment as segment_id, * exclude (run_id, run, segment)
    from read_parquet(
        store_root() || '/data/*/segment=*/' || name || '.parquet',
        hive_partitioning = true, hive_types = {'run': VARCHAR, 'segment': VARCHAR},
        union_by_name = true
    )
),

final as (
    select * from sample_dirs
    where not exists (
        select 1 from active as c
        where c.run_id = sample_dirs.run_id and c.sample_key = sample_dirs.sample_key
    )
    union all by name
    select * exclude (segment_id) from segments
    where segment_id in (select segment_id from active)
)

select * from final
where (select ok from store_guard());
