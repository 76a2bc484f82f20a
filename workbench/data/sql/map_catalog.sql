-- map_catalog: which maps the runs of the shown samples captured (the choices of the attention
-- overlay), from the pre-aggregated map_stats view: one row per run and map key, no map row read.
-- (A run's samples share its capture spec; a shown sample without one of these maps gets the
-- overlay's "no map" message.)  params: $run_ids
select m.run_id, m.site,
       coalesce(s.part, case split_part(m.site, '.', 1)
           when 'down_blocks' then 'down' when 'mid_block' then 'mid' when 'up_blocks' then 'up' end) as part,
       s.block, m.step, m.avg_timestep as timestep, m.branch, m.token, m.head, m.stage,
       m.n_data, m.height, m.width
from map_stats as m
left join sites as s on s.run_id = m.run_id and s.site = m.site
where m.stream = 'id' and list_contains($run_ids, m.run_id);
