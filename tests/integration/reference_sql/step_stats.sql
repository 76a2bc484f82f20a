-- The workbench query before map_stats (git HEAD~ of workbench/data/sql): the decode / full-scan reference
-- that tests/integration/test_store_summaries.py compares the pre-aggregated query with.
-- step_stats: entropy and peak statistics of the maps per run, step, UNet part and stage, and the
-- counts of the entropy mean (from the maps' own min / max / entropy columns).
-- params: $run_ids, $branch, $tokens (null = all)
select m.run_id, m.step, avg(m.timestep) as timestep,
       coalesce(s.part, case split_part(m.site, '.', 1)
           when 'down_blocks' then 'down' when 'mid_block' then 'mid' when 'up_blocks' then 'up' end) as part,
       m.stage,
       avg(m.entropy) as entropy, avg(m.max) as peak, avg(m.q99) as q99, avg(m.mean) as mean,
       avg(m.max / nullif(m.mean, 0)) as peak_ratio,
       count(m.max / nullif(m.mean, 0)) as n_peak_ratio,
       count(*) as n_maps,
       count(m.entropy) as n_entropy,
       count(*) filter (where m.min < 0) as n_negative,
       count(*) filter (where m.max <= 0) as n_zero_sum,
       count(*) - count(m.entropy) as n_entropy_excluded
from maps as m
left join sites as s on s.run_id = m.run_id and s.site = m.site
where list_contains($run_ids, m.run_id)
  and ($branch::varchar is null or m.branch = $branch)
  and ($tokens::integer[] is null or list_contains($tokens, m.token))
group by all
order by m.run_id, part, m.stage, m.step;
