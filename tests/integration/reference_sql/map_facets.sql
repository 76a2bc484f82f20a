-- The workbench query before map_stats (git HEAD~ of workbench/data/sql): the decode / full-scan reference
-- that tests/integration/test_store_summaries.py compares the pre-aggregated query with.
-- map_facets: the capture axes present in the chosen runs (maps metadata only, no data).
-- params: $run_ids
select m.run_id,
       coalesce(s.part, case split_part(m.site, '.', 1)
           when 'down_blocks' then 'down' when 'mid_block' then 'mid' when 'up_blocks' then 'up' end) as part,
       s.block, m.site, m.step, m.branch, m.token, m.stage,
       count(*) as n_maps,
       count(*) filter (where m.hist is not null) as n_hist,
       count(*) filter (where m.encoding <> 'none') as n_data
from maps as m
left join sites as s on s.run_id = m.run_id and s.site = m.site
where list_contains($run_ids, m.run_id)
group by all;
