-- relationships: referential integrity maps/faces/metrics -> samples -> runs, sites -> runs,
-- run_events -> runs, maps.site -> sites.
with missing as (
    select 'samples' as table_name, s.run_id, s.sample_key, 'run not in runs' as detail
    from samples as s anti join runs as r on r.run_id = s.run_id
    union all
    select 'maps', m.run_id, m.sample_key, 'sample not in samples'
    from (select distinct run_id, sample_key from maps) as m
    anti join samples as s on s.run_id = m.run_id and s.sample_key = m.sample_key
    union all
    select 'faces', f.run_id, f.sample_key, 'sample not in samples'
    from faces as f anti join samples as s on s.run_id = f.run_id and s.sample_key = f.sample_key
    union all
    select 'metrics', x.run_id, x.sample_key, 'sample not in samples'
    from metrics as x anti join samples as s on s.run_id = x.run_id and s.sample_key = x.sample_key
    union all
    select 'sites', x.run_id, null, 'run not in runs'
    from sites as x anti join runs as r on r.run_id = x.run_id
    union all
    select 'run_events', e.run_id, null, 'run not in runs'
    from run_events as e anti join runs as r on r.run_id = e.run_id
    union all
    select 'maps', m.run_id, m.sample_key, 'site ' || m.site || ' not in sites'
    from (select distinct run_id, sample_key, site from maps) as m
    anti join sites as s on s.run_id = m.run_id and s.site = m.site
),

final as (
    select * from missing
)

select * from final;
