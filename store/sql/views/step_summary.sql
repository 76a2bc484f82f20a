-- step_summary: per (run_id, step, part, stage): averages of the map summaries over samples,
-- sites of the part, branches, tokens and heads.  part comes from the sites view, or from the
-- site name prefix (down_blocks / mid_block / up_blocks) when the site is not in sites.
-- ID maps only (stream 'id'; word maps: map_stats where stream = 'text').
-- Columns: run_id, step, part, stage, avg_timestep, n_maps, n_samples, n_sites, avg_mean,
-- avg_std, avg_max, avg_entropy, and what avg_entropy covers (as in site_summary): n_entropy,
-- n_negative (counted, on the positive part), n_zero_sum (left out), n_entropy_excluded.
create or replace view step_summary as
with source as (
    select
        maps.run_id, maps.sample_key, maps.site, maps.step, maps.timestep, maps.stage,
        maps.min, maps.mean, maps.std, maps.max, maps.entropy,
        coalesce(
            sites.part,
            case split_part(maps.site, '.', 1)
                when 'down_blocks' then 'down' when 'mid_block' then 'mid' when 'up_blocks' then 'up'
            end
        ) as part
    from maps
    left join sites on sites.run_id = maps.run_id and sites.site = maps.site
    where maps.stream = 'id'
),

final as (
    select
        run_id, step, part, stage,
        avg(timestep) as avg_timestep,
        count(*) as n_maps,
        count(distinct sample_key) as n_samples,
        count(distinct site) as n_sites,
        avg(mean) as avg_mean,
        avg(std) as avg_std,
        avg(max) as avg_max,
        avg(entropy) as avg_entropy,
        count(entropy) as n_entropy,
        count(*) filter (where min < 0) as n_negative,
        count(*) filter (where max <= 0) as n_zero_sum,
        count(*) - count(entropy) as n_entropy_excluded
    from source
    group by all
)

select * from final;
