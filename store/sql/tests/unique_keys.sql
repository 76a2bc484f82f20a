-- unique_keys: every view's key is unique.  Returns one row per duplicated key.
-- Columns of every contract: table_name, run_id, sample_key, detail.
with runs_dup as (
    select 'runs' as table_name, run_id, null as sample_key, count(*)::varchar || ' rows' as detail
    from runs group by run_id having count(*) > 1
),

samples_dup as (
    select 'samples', run_id, sample_key, count(*)::varchar || ' rows'
    from samples group by run_id, sample_key having count(*) > 1
),

maps_dup as (
    select 'maps', run_id, sample_key,
           concat_ws('/', site, step, branch, stream, word, token, head, stage) || ': ' || count(*)::varchar || ' rows'
    from maps group by run_id, sample_key, site, step, branch, stream, word, token, head, stage having count(*) > 1
),

faces_dup as (
    select 'faces', run_id, sample_key, role || ': ' || count(*)::varchar || ' rows'
    from faces group by run_id, sample_key, role having count(*) > 1
),

metrics_dup as (
    select 'metrics', run_id, sample_key, name || '/' || model || ': ' || count(*)::varchar || ' rows'
    from metrics group by run_id, sample_key, name, model having count(*) > 1
),

sites_dup as (
    select 'sites', run_id, null, site || ': ' || count(*)::varchar || ' rows'
    from sites group by run_id, site having count(*) > 1
),

events_dup as (
    select 'run_events', run_id, null, event_id || ': ' || count(*)::varchar || ' rows'
    from run_events group by run_id, event_id having count(*) > 1
),

final as (
    select * from runs_dup
    union all select * from samples_dup
    union all select * from maps_dup
    union all select * from faces_dup
    union all select * from metrics_dup
    union all select * from sites_dup
    union all select * from events_dup
)

select * from final;
