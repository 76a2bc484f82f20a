-- runs: one row per run (runs/<run_id>/run.parquet) with its latest status event
-- (latest = greatest `at`, ties by event_id).  Columns: raw.runs (0001_init.sql) + status,
-- status_at, n_done, n_failed, n_total, status_message, status_worker_id (null when the run
-- has no event).
create or replace view runs as
with run_rows as (
    select *
    from read_parquet(store_root() || '/runs/*/run.parquet', union_by_name = true, hive_partitioning = false)
    where (select ok from store_guard())
),

latest_event as (
    select *
    from run_events
    qualify row_number() over (partition by run_id order by "at" desc, event_id desc) = 1
),

final as (
    select
        run_rows.*,
        latest_event.status,
        latest_event."at" as status_at,
        latest_event.n_done,
        latest_event.n_failed,
        latest_event.n_total,
        latest_event.message as status_message,
        latest_event.worker_id as status_worker_id
    from run_rows
    left join latest_event on latest_event.run_id = run_rows.run_id
)

select * from final;
