-- samples: one row per committed sample, ok or failed (raw.samples in 0001_init.sql documents
-- the columns).  Rows come from sample directories (run_id and sample_key taken from the
-- hive path run=<id>/sample=<key>, so filters on them prune files) and from compacted
-- segments; a sample present in both (interrupted compaction) is shown once, from the segment.  image_png is the PNG of
-- the generated image: select it only when needed (Parquet reads only the selected columns).
create or replace view samples as
with sample_dirs as (
    -- committed sample directories: run_id / sample_key come from the path (equal to the
    -- values in the files), so `where run_id = ... and sample_key = ...` reads one file
    select run as run_id, sample as sample_key, * exclude (run_id, sample_key, run, sample)
    from read_parquet(
        {{ store_root }} || '/data/*/sample=*/samples.parquet',
        hive_partitioning = true, hive_types = {'run': VARCHAR, 'sample': VARCHAR},
        union_by_name = true
    )
),

segments as (
    select run as run_id, * exclude (run_id, run, segment)
    from read_parquet(
        {{ store_root }} || '/data/*/segment=*/samples.parquet',
        hive_partitioning = true, hive_types = {'run': VARCHAR, 'segment': VARCHAR},
        union_by_name = true
    )
),

compacted as (
    select run_id, sample_key from store_manifest where kind = 'sample'
),

final as (
    -- a sample directory whose sample was merged into a segment is hidden: the segment wins
    select * from sample_dirs
    where not exists (
        select 1 from compacted as c
        where c.run_id = sample_dirs.run_id and c.sample_key = sample_dirs.sample_key
    )
    union all by name
    select * from segments
)

select * from final;
