-- map_facets: the capture axes present in the chosen runs, from the pre-aggregated map_stats view
-- (one row per run and map key, summed over samples: no map row is read).
-- params: $run_ids
select m.run_id,
       coalesce(s.part, case split_part(m.site, '.', 1)
           when 'down_blocks' then 'down' when 'mid_block' then 'mid' when 'up_blocks' then 'up' end) as part,
       s.block, m.site, m.step, m.branch, m.token, m.stage,
       sum(m.n_maps)::bigint as n_maps,
       sum(m.n_hist)::bigint as n_hist,
       sum(m.n_data)::bigint as n_data
from map_stats as m
left join sites as s on s.run_id = m.run_id and s.site = m.site
where m.stream = 'id' and list_contains($run_ids, m.run_id)
group by all;
