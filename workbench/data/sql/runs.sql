-- runs: every run with its latest status, capture spec and committed sample counts (Runs page,
-- and run metadata for every page); a grid cell's grid id and coordinates ('varied':
-- 'path=value, ...', '' for a grid's base; null for a run that is no grid cell).  No parameters.
with committed as (
    select run_id,
           count(*) as n_samples,
           count(*) filter (where status = 'ok') as n_ok,
           count(*) filter (where status = 'failed') as n_failed_samples
    from samples
    group by run_id
),

cells as (
    select distinct run_id, grid, label as varied
    from grid_cells
)

select
    r.run_id, r.name, r.preset, r.checkpoint, r.ip_scale, r.lora_scale, r.seed, r.created_at,
    r.status, r.status_at, r.status_message, r.n_done, r.n_failed, r.n_total,
    coalesce(c.n_samples, 0) as n_samples,
    coalesce(c.n_ok, 0) as n_ok,
    coalesce(c.n_failed_samples, 0) as n_failed_samples,
    r.capture_spec_json, r.config_json, r.package_versions_json, r.host, r.notes,
    r.variation_json, g.grid, g.varied
from runs as r
left join committed as c on c.run_id = r.run_id
left join cells as g on g.run_id = r.run_id
order by r.created_at desc, r.run_id;
