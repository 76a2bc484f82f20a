-- map_catalog: which maps exist for some samples (no map data is read): the choices of the
-- attention overlay.  params: $run_ids, $sample_keys
select m.run_id, m.site,
       coalesce(s.part, case split_part(m.site, '.', 1)
           when 'down_blocks' then 'down' when 'mid_block' then 'mid' when 'up_blocks' then 'up' end) as part,
       s.block, m.step, m.timestep, m.branch, m.token, m.head, m.stage, m.encoding,
       m.height, m.width
from maps as m
left join sites as s on s.run_id = m.run_id and s.site = m.site
where list_contains($run_ids, m.run_id) and list_contains($sample_keys, m.sample_key);
