-- The workbench query before map_stats (git HEAD~ of workbench/data/sql): the decode / full-scan reference
-- that tests/integration/test_store_summaries.py compares the pre-aggregated query with.
-- face_mass: mean share of attention mass inside the generated face (box and landmark
-- ellipse) per site and step for one run (map_face_mass view, maps of detected faces only).
-- params: $run_id, $stage, $branch, $token
select f.site,
       coalesce(s.part, split_part(f.site, '.', 1)) as part,
       f.step,
       avg(f.mass_in_box) as mass_in_box,
       avg(f.mass_in_ellipse) as mass_in_ellipse,
       avg(f.iou_box) as iou_box,
       count(*) as n_maps
from map_face_mass as f
left join sites as s on s.run_id = f.run_id and s.site = f.site
where f.run_id = $run_id and f.stage = $stage and f.branch = $branch and f.token = $token
group by all
order by f.site, f.step;
