-- run_progress: one row for a run: latest status event and the counts actually committed.
-- params: $run_id
with committed as (
    select
        count(*) as n_committed,
        count(*) filter (where status = 'ok') as n_ok,
        count(*) filter (where status = 'failed') as n_failed_committed,
        min(started_at) as first_started_at,
        max(finished_at) as last_finished_at,
        avg(gen_seconds) as avg_gen_seconds,
        sum(capture_bytes) as capture_bytes
    from samples
    where run_id = $run_id
),

final as (
    select
        runs.run_id, runs.name, runs.preset, runs.status, runs.status_at, runs.status_message,
        runs.n_total, committed.*,
        committed.n_committed / nullif(runs.n_total, 0) as fraction_done
    from runs, committed
    where runs.run_id = $run_id
)

select * from final;
