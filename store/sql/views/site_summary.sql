-- site_summary: per (run_id, site, stage, branch, token, head_reduction): averages of the map
-- summaries over samples and steps (and over heads for head_reduction = 'none').
-- ID maps only (stream 'id'; word maps: map_stats where stream = 'text').
-- Columns: run_id, site, stage, branch, token, head_reduction, n_maps, n_samples, n_steps,
-- avg_mean, avg_std, avg_max, avg_entropy, and what avg_entropy covers:
--   n_entropy           maps with an entropy (of the positive part max(v, 0): maps with negative
--                       values count, store/VIEWS.md "Maps with negative values")
--   n_negative          maps with a value < 0 (counted in avg_entropy)
--   n_zero_sum          maps with no value > 0 (entropy undefined: left out)
--   n_entropy_excluded  n_maps - n_entropy (n_zero_sum, plus signed maps of a store written
--                       before migration 0003 that backfill could not recompute: no values)
create or replace view site_summary as
with source as (
    select run_id, sample_key, site, step, stage, branch, token, head_reduction, min, mean, std, max, entropy
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
        avg(entropy) as avg_entropy,
        count(entropy) as n_entropy,
        count(*) filter (where min < 0) as n_negative,
        count(*) filter (where max <= 0) as n_zero_sum,
        count(*) - count(entropy) as n_entropy_excluded
    from source
    group by all
)

select * from final;
