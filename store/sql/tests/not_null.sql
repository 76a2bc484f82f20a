-- not_null: required columns are not null (files written outside StoreWriter could break it).
with checks as (
    select 'runs' as table_name, run_id, null as sample_key,
           'null ' || concat_ws(', ',
               case when run_id is null then 'run_id' end,
               case when created_at is null then 'created_at' end,
               case when config_json is null then 'config_json' end,
               case when schema_version is null then 'schema_version' end) as detail
    from runs
    union all
    select 'run_events', run_id, null,
           'null ' || concat_ws(', ',
               case when run_id is null then 'run_id' end,
               case when "at" is null then 'at' end,
               case when status is null then 'status' end)
    from run_events
    union all
    select 'samples', run_id, sample_key,
           'null ' || concat_ws(', ',
               case when run_id is null then 'run_id' end,
               case when sample_key is null then 'sample_key' end,
               case when identity is null then 'identity' end,
               case when prompt is null then 'prompt' end,
               case when category is null then 'category' end,
               case when seed is null then 'seed' end,
               case when status is null then 'status' end,
               case when schema_version is null then 'schema_version' end)
    from samples
    union all
    select 'maps', run_id, sample_key,
           'null ' || concat_ws(', ',
               case when run_id is null then 'run_id' end,
               case when sample_key is null then 'sample_key' end,
               case when site is null then 'site' end,
               case when step is null then 'step' end,
               case when branch is null then 'branch' end,
               case when token is null then 'token' end,
               case when head is null then 'head' end,
               case when head_reduction is null then 'head_reduction' end,
               case when stage is null then 'stage' end,
               case when height is null then 'height' end,
               case when width is null then 'width' end,
               case when encoding is null then 'encoding' end,
               case when n_values is null then 'n_values' end)
    from maps
    union all
    select 'faces', run_id, sample_key,
           'null ' || concat_ws(', ',
               case when run_id is null then 'run_id' end,
               case when sample_key is null then 'sample_key' end,
               case when role is null then 'role' end,
               case when detected is null then 'detected' end,
               case when backend is null then 'backend' end)
    from faces
    union all
    select 'metrics', run_id, sample_key,
           'null ' || concat_ws(', ',
               case when run_id is null then 'run_id' end,
               case when sample_key is null then 'sample_key' end,
               case when name is null then 'name' end,
               case when model is null then 'model' end,
               case when created_at is null then 'created_at' end)
    from metrics
    union all
    select 'sites', run_id, null,
           'null ' || concat_ws(', ',
               case when run_id is null then 'run_id' end,
               case when site is null then 'site' end,
               case when part is null then 'part' end,
               case when heads is null then 'heads' end,
               case when height is null then 'height' end,
               case when width is null then 'width' end)
    from sites
),

final as (
    select * from checks where detail <> 'null '
)

select * from final;
