-- run_params: one row per run (every run, grid or not) and parameter path, read from the run's
-- stored config (runs.config_json): what the run actually ran with.
--   path    the parameter path (fastface.method.paths): 'am.am1.scale_up', 'ip_scale', ...; for a
--           per-step schedule stored with one value per step also one row per step,
--           'guidance.beta[0]', 'guidance.beta[1]', ... (a constant one-value schedule: the
--           whole-path row only; its value is that constant)
--   field   the path without its step index; step: the index (null for the whole field)
--   value   the value as DOUBLE (numbers; true/false as 1/0; null for text, lists, unset)
--   text    the value as text ('1.45', 'am2', 'down/up', '7.5/5.0/5.0/5.0'; null when unset)
--   preset, checkpoint  of the run; varied: whether a grid varied this path (grid_cells)
-- e.g. select run_id from run_params where path = 'am.am1.scale_up' and value = 1.2
-- The path list is fastface.method.paths.param_paths() (tests/unit/test_run_params_sql.py
-- checks that they agree).
create or replace view run_params as
with fields as (
    select unnest([
        'guidance.variant', 'guidance.alpha', 'guidance.beta', 'guidance.rescale', 'guidance.rescale_mode',
        'am.kind', 'am.parts', 'am.tokens', 'am.steps', 'am.am1.scale_down', 'am.am1.scale_up',
        'am.am1.scale_mid', 'am.am1.power', 'am.am1.max_value', 'am.am2.steepness', 'am.am2.quantile',
        'am.am2.scale', 'am.am2.adain_weight', 'am.am2.invert_first_token', 'am.am2.normalization',
        'am.am2.quantile_dtype', 'ip_scale', 'lora_scale'
    ]) as field
),

schedules as (
    select unnest([
        'guidance.alpha', 'guidance.beta', 'am.am2.steepness', 'am.am2.quantile', 'am.am2.scale',
        'am.am2.adain_weight'
    ]) as field
),

run_fields as (
    select
        runs.run_id,
        runs.preset,
        runs.checkpoint,
        fields.field,
        json_extract(runs.config_json, '$.' || fields.field) as v
    from runs
    cross join fields
),

whole as (
    select run_id, preset, checkpoint, field as path, field, null::integer as step,
           param_number(v) as value, param_text(v) as text
    from run_fields
),

per_step as (
    select
        run_id, preset, checkpoint, field,
        unnest(generate_series(0, json_array_length(v)::integer - 1))::integer as step,
        unnest(json_extract(v, '$[*]')) as step_value
    from run_fields
    where field in (select field from schedules) and json_type(v) = 'ARRAY' and json_array_length(v) > 1
),

steps as (
    select run_id, preset, checkpoint, field || '[' || step::varchar || ']' as path, field, step,
           param_number(step_value) as value, param_text(step_value) as text
    from per_step
),

varied as (
    select distinct run_id, path from grid_cells where path is not null
),

final as (
    select p.run_id, p.preset, p.checkpoint, p.path, p.field, p.step, p.value, p.text,
           varied.path is not null as varied
    from (select * from whole union all select * from steps) as p
    left join varied on varied.run_id = p.run_id and varied.path = p.path
)

select * from final;
