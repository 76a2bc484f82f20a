-- hist_sum: the stored value histograms (maps.hist, 34 bins: <0, 32 bins on [0,1], >1) summed
-- per run and stage over the maps matching the filters (the paper's Fig. 6), from the
-- pre-aggregated map_stats view (histograms summed per run and map key when written).
-- params: $run_ids, $part, $block, $step, $token, $branch (null = all)
with selected as (
    select m.run_id, m.stage, m.hist, m.n_hist
    from map_stats as m
    left join sites as s on s.run_id = m.run_id and s.site = m.site
    where m.stream = 'id' and list_contains($run_ids, m.run_id)
      and m.n_hist > 0
      and ($part::varchar is null or coalesce(s.part, case split_part(m.site, '.', 1)
              when 'down_blocks' then 'down' when 'mid_block' then 'mid' when 'up_blocks' then 'up' end) = $part)
      and ($block::integer is null or s.block = $block)
      and ($step::integer is null or m.step = $step)
      and ($token::integer is null or m.token = $token)
      and ($branch::varchar is null or m.branch = $branch)
),

bins as (
    select run_id, stage, unnest(hist) as n, generate_subscripts(hist, 1) as bin
    from selected
)

select run_id, stage, bin, sum(n)::bigint as count, (select sum(s2.n_hist)::bigint from selected s2
    where s2.run_id = bins.run_id and s2.stage = bins.stage) as n_maps
from bins
group by run_id, stage, bin
order by run_id, stage, bin;
