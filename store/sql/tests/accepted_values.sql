-- accepted_values: enumerated columns hold accepted values, numeric codes their ranges.
with checks as (
    select 'run_events' as table_name, run_id, null as sample_key, 'status = ' || coalesce(status, 'NULL') as detail
    from run_events where status not in ('running', 'completed', 'interrupted', 'failed')
    union all
    select 'samples', run_id, sample_key, 'sample_key is not path-safe'
    from samples where not regexp_full_match(sample_key, '[A-Za-z0-9][A-Za-z0-9._-]{0,127}')
    union all
    select 'samples', run_id, sample_key, 'status = ' || status
    from samples where status not in ('ok', 'failed')
    union all
    select 'samples', run_id, sample_key, 'category = ' || category
    from samples where category not in ('realistic', 'stylistic')
    union all
    select 'maps', run_id, sample_key, 'encoding = ' || encoding
    from maps where encoding not in ('f16', 'u8', 'none')
    union all
    select 'maps', run_id, sample_key, 'head_reduction = ' || head_reduction
    from maps where head_reduction not in ('mean', 'max', 'none')
    union all
    select 'maps', run_id, sample_key, 'stage = ' || stage
    from maps where stage not in ('pre', 'post')
    union all
    select 'maps', run_id, sample_key, 'token = ' || token::varchar
    from maps where token not between -1 and 3
    union all
    select 'maps', run_id, sample_key, 'head = ' || head::varchar
    from maps where head < -1
    union all
    select 'maps', run_id, sample_key, 'step = ' || step::varchar
    from maps where step < 0
    union all
    select 'faces', run_id, sample_key, 'role = ' || role
    from faces where role not in ('reference', 'generated')
    union all
    select 'sites', run_id, null, 'part = ' || part
    from sites where part not in ('down', 'mid', 'up')
    union all
    select 'sites', run_id, null, 'attn = ' || attn
    from sites where attn not in ('attn1', 'attn2')
),

final as (
    select * from checks
)

select * from final;
