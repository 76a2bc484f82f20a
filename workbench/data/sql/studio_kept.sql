-- studio_kept: runs that are cells of a parameter grid (the Studio's kept edits, `fastface
-- capture --vary`): their config and coordinates, to reopen in the Studio; newest first.
-- No parameters.
select r.run_id, r.preset, r.checkpoint, r.created_at, r.config_json, r.variation_json,
       json_extract_string(r.variation_json, '$.grid') as grid,
       coalesce(g.label, '') as label
from runs as r
left join (select distinct run_id, label from grid_cells) as g on g.run_id = r.run_id
where r.variation_json is not null
order by r.created_at desc, r.run_id;
