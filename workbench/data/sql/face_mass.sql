-- face_mass: mean share of attention mass inside the generated face (box and landmark
-- ellipse) per site and step for one run, over the maps of detected faces (the map_face_mass
-- view), read from the pre-aggregated map_stats view (face-mass sums written with each sample:
-- no map is decoded).  params: $run_id, $stage, $branch, $token
select f.site,
       coalesce(s.part, split_part(f.site, '.', 1)) as part,
       f.step,
       sum(f.sum_mass_in_box) / nullif(sum(f.n_mass_in_box), 0) as mass_in_box,
       sum(f.sum_mass_in_ellipse) / nullif(sum(f.n_mass_in_ellipse), 0) as mass_in_ellipse,
       sum(f.sum_iou_box) / nullif(sum(f.n_iou_box), 0) as iou_box,
       sum(f.n_face_maps)::bigint as n_maps
from map_stats as f
left join sites as s on s.run_id = f.run_id and s.site = f.site
where f.stream = 'id' and f.run_id = $run_id and f.stage = $stage and f.branch = $branch and f.token = $token
  and f.n_face_maps > 0
group by all
order by f.site, f.step;
