-- store_manifest: directories merged into compacted segments, one row per merged directory
-- (from data/run=<id>/segment=<uuid>/manifest.parquet).  compacted_at (UTC) is the moment
-- from which the views use the segment: the compactor sets it a few seconds after it
-- publishes the segment.  From then on the table views hide the sample directories the
-- segment merged; those stay on disk for the retention period (store/README.md), so queries
-- that listed them before can still read them.
-- Columns: run_id, segment_id, source_dir ('sample=<key>' | 'metrics=<id>'), kind ('sample' |
-- 'metrics'), sample_key (kind = 'sample'), compacted_at, schema_version.
create or replace view store_manifest as
with source as (
    select *
    from read_parquet(store_root() || '/data/*/segment=*/manifest.parquet', union_by_name = true, hive_partitioning = false)
    where (select ok from store_guard())
),

final as (
    select * from source
)

select * from final;
