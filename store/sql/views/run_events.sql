-- run_events: every status event of every run (runs/<run_id>/events/*.parquet).
-- Columns: event_id, run_id, "at" (a keyword: quote it), status ('running' | 'completed' | 'interrupted' | 'failed'),
-- n_done, n_failed, n_total, message, host, pid, worker_id, schema_version.
create or replace view run_events as
with source as (
    select *
    from read_parquet(store_root() || '/runs/*/events/*.parquet', union_by_name = true, hive_partitioning = false)
    where (select ok from store_guard())
),

final as (
    select * from source
)

select * from final;
