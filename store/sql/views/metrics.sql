-- metrics: scalar metrics, one row per (run_id, sample_key, name, model).  Metrics are written
-- with their sample (data/run=<id>/sample=<key>/metrics.parquet) or later by an evaluator
-- (StoreWriter.add_metrics -> data/run=<id>/metrics=<id>/metrics.parquet), and compaction
-- merges both into segments.  When a key was written more than once, the row with the latest
-- created_at wins; this also hides the copies of compacted directories kept for the
-- retention period.
-- Columns: run_id, sample_key, name, value, model, created_at, schema_version.
create or replace view metrics as
with sample_dirs as (
    select run as run_id, sample as sample_key, * exclude (run_id, sample_key, run, sample)
    from read_parquet(
        store_root() || '/data/*/sample=*/metrics.parquet',
        hive_partitioning = true, hive_types = {'run': VARCHAR, 'sample': VARCHAR},
        union_by_name = true
    )
),

later as (
    select run as run_id, * exclude (run_id, run, metrics)
    from read_parquet(
        store_root() || '/data/*/metrics=*/metrics.parquet',
        hive_partitioning = true, hive_types = {'run': VARCHAR, 'metrics': VARCHAR},
        union_by_name = true
    )
),

segments as (
    select run as run_id, * exclude (run_id, run, segment)
    from read_parquet(
        store_root() || '/data/*/segment=*/metrics.parquet',
        hive_partitioning = true, hive_types = {'run': VARCHAR, 'segment': VARCHAR},
        union_by_name = true
    )
),

all_rows as (
    select * from sample_dirs
    union all by name select * from later
    union all by name select * from segments
),

final as (
    select *
    from all_rows
    where (select ok from store_guard())
    qualify row_number() over (
        partition by run_id, sample_key, name, model order by created_at desc
    ) = 1
)

select * from final;
