-- store_manifest: directories merged into compacted segments, one row per merged directory
-- (from data/run=<id>/segment=<uuid>/manifest.parquet).  The table views use it to hide a
-- sample directory whose sample is also in a segment (crash between the segment rename and
-- the removal of the merged directories): the segment copy wins.
-- Columns: run_id, segment_id, source_dir ('sample=<key>' | 'metrics=<id>'), kind ('sample' |
-- 'metrics'), sample_key (kind = 'sample'), compacted_at, schema_version.
create or replace view store_manifest as
with source as (
    select *
    from read_parquet({{ store_root }} || '/data/*/segment=*/manifest.parquet', union_by_name = true, hive_partitioning = false)
),

final as (
    select * from source
)

select * from final;
