-- step_stats: entropy and peak statistics of the maps per run, step, UNet part and stage, from
-- the pre-aggregated map_stats view: avg(x) over maps = sum(sum_x) / sum(n_x), with what the
-- entropy mean covers: n_entropy maps (those with negative values on their positive part:
-- n_negative), n_zero_sum left out (no value > 0), n_entropy_excluded = n_maps - n_entropy.
-- params: $run_ids, $branch, $tokens (null = all)
select m.run_id, m.step, sum(m.sum_timestep) / nullif(sum(m.n_timestep), 0) as timestep,
       coalesce(s.part, case split_part(m.site, '.', 1)
           when 'down_blocks' then 'down' when 'mid_block' then 'mid' when 'up_blocks' then 'up' end) as part,
       m.stage,
       sum(m.sum_entropy) / nullif(sum(m.n_entropy), 0) as entropy,
       sum(m.sum_max) / nullif(sum(m.n_max), 0) as peak,
       sum(m.sum_q99) / nullif(sum(m.n_q99), 0) as q99,
       sum(m.sum_mean) / nullif(sum(m.n_mean), 0) as mean,
       sum(m.sum_peak_ratio) / nullif(sum(m.n_peak_ratio), 0) as peak_ratio,
       sum(m.n_peak_ratio)::bigint as n_peak_ratio,
       sum(m.n_maps)::bigint as n_maps,
       sum(m.n_entropy)::bigint as n_entropy,
       sum(m.n_negative)::bigint as n_negative,
       sum(m.n_zero_sum)::bigint as n_zero_sum,
       (sum(m.n_maps) - sum(m.n_entropy))::bigint as n_entropy_excluded
from map_stats as m
left join sites as s on s.run_id = m.run_id and s.site = m.site
where m.stream = 'id' and list_contains($run_ids, m.run_id)
  and ($branch::varchar is null or m.branch = $branch)
  and ($tokens::integer[] is null or list_contains($tokens, m.token))
group by all
order by m.run_id, part, m.stage, m.step;
