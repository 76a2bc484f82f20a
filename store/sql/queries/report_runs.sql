-- report_runs: the chosen runs with their grouping keys (checkpoint, lora_scale, ip_scale,
-- preset) and committed sample counts per prompt category, for `fastface report`; varied: a grid
-- cell's coordinates ('path=value, ...'; '' for a grid's base; null: no grid cell; view grid_cells).
-- params: $runs (comma-separated run ids; '' = every run)
with committed as (
    select
        run_id,
        count(*) as n_samples,
        count(*) filter (where status = 'ok') as n_ok,
        count(*) filter (where status = 'failed') as n_failed,
        count(*) filter (where status = 'ok' and category = 'realistic') as n_ok_realistic,
        count(*) filter (where status = 'ok' and category = 'stylistic') as n_ok_stylistic,
        count(*) filter (where status = 'failed' and category = 'realistic') as n_failed_realistic,
        count(*) filter (where status = 'failed' and category = 'stylistic') as n_failed_stylistic
    from samples
    group by run_id
),

cells as (
    select distinct run_id, label as varied
    from grid_cells
),

final as (
    select
        r.run_id, r.name, r.preset, r.checkpoint, r.ip_scale, r.lora_scale, r.seed, r.created_at,
        r.status, r.n_total,
        coalesce(c.n_samples, 0) as n_samples,
        coalesce(c.n_ok, 0) as n_ok,
        coalesce(c.n_failed, 0) as n_failed,
        coalesce(c.n_ok_realistic, 0) as n_ok_realistic,
        coalesce(c.n_ok_stylistic, 0) as n_ok_stylistic,
        coalesce(c.n_failed_realistic, 0) as n_failed_realistic,
        coalesce(c.n_failed_stylistic, 0) as n_failed_stylistic,
        g.varied
    from runs as r
    left join committed as c on c.run_id = r.run_id
    left join cells as g on g.run_id = r.run_id
    where $runs = '' or list_contains(string_split($runs, ','), r.run_id)
)

select * from final
order by checkpoint, lora_scale, ip_scale, preset, run_id;
