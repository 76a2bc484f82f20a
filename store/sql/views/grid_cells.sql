-- grid_cells: the runs that are cells of a parameter grid (`fastface capture --vary`, the
-- Studio's kept edits; runs.variation_json, migration 0004), one row per run and varied coordinate.
--   grid    the grid's id (the runs of one grid share it); base: the preset the grid varies
--   path    the varied parameter path ('am.am1.scale_up', 'guidance.beta[3]'); null for a
--           grid run that varies nothing (the base preset itself, coords {}): one row
--   field   the path without its step index
--   value   the cell's value as DOUBLE (numbers; true/false as 1/0; else null)
--   text    the value as text ('1.2', 'down/up'); label: 'path=text, ...' of all the run's coordinates
--   n_coords  coordinates of the run
-- e.g. select run_id, path, value from grid_cells where grid = '...' order by run_id, path
create or replace view grid_cells as
with varied as (
    select run_id, preset, checkpoint, variation_json::json as variation
    from runs
    where variation_json is not null
),

cells as (
    select
        run_id, preset, checkpoint,
        json_extract_string(variation, '$.grid') as grid,
        json_extract_string(variation, '$.base') as base,
        json_extract(variation, '$.coords') as coords,
        json_keys(json_extract(variation, '$.coords')) as paths
    from varied
),

coordinates as (
    select run_id, grid, base, preset, checkpoint, coords, len(paths) as n_coords,
           unnest(case when len(paths) = 0 then [null::varchar] else paths end) as path
    from cells
),

valued as (
    select *, json_extract(coords, '$."' || path || '"') as v
    from coordinates
),

labels as (
    select run_id, string_agg(path || '=' || coalesce(param_text(v), 'none'), ', ' order by path) as label
    from valued
    where path is not null
    group by run_id
),

final as (
    select
        valued.run_id, valued.grid, valued.base, valued.preset, valued.checkpoint, valued.path,
        regexp_extract(valued.path, '^[^\[]+') as field,
        param_number(valued.v) as value,
        param_text(valued.v) as text,
        coalesce(labels.label, '') as label,
        valued.n_coords
    from valued
    left join labels on labels.run_id = valued.run_id
)

select * from final;
