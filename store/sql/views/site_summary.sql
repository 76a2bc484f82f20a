-- site_summary: per (run_id, site, stage, branch, token, head_reduction): averages of the map
-- summaries over samples and steps (and over heads for head_reduction = 'none').
-- ID maps only (stream 'id'; word maps: map_stats where stream = 'text').
-- Columns: run_id, site, stage, branch, token, head_reduction, n_maps, n_samples, n_steps,
-- avg_mean, avg_std, avg_max, avg_entropy.
create or replace view site_summary as
with source as (
    select run_id, sample_key, site, step, stage, branch, token, head_reduction, mean, std, max, entropy
    from maps
    where stream = 'id'
),

final as (
    select
        run_id, site, stage, branch, token, head_reduction,
        count(*) as n_maps,
        count(distinct sample_key) as n_samples,
        count(distinct step) as n_steps,
        avg(mean) as avg_mean,
        avg(std) as avg_std,
        avg(max) as avg_max,
        avg(entropy) as avg_entropy
    from source
    group by all
)

select * from final;
