-- face_mass: mean share of attention mass inside the generated face (box and landmark
-- ellipse) per site and step for one run, over the maps of detected faces and the chosen ID tokens
-- (stream 'id': word maps are not averaged in)
-- (the map_face_mass view), read from the pre-aggregated map_stats view (face-mass sums written
-- with each sample: no map is decoded), with what each cell's mean covers and leaves out:
-- n_maps maps captured, n_covered averaged (maps with negative values count on their positive
-- part: n_negative), n_zero_sum maps on a detected face with no value > 0, n_no_face / n_no_data
-- maps of samples without a detected face / without stored values.  params: $run_id, $stage, $branch, $tokens
-- (null = every token)
select f.site,
       coalesce(s.part, split_part(f.site, '.', 1)) as part,
       f.step,
       sum(f.sum_mass_in_box) / nullif(sum(f.n_mass_in_box), 0) as mass_in_box,
       sum(f.sum_mass_in_ellipse) / nullif(sum(f.n_mass_in_ellipse), 0) as mass_in_ellipse,
       sum(f.sum_iou_box) / nullif(sum(f.n_iou_box), 0) as iou_box,
       sum(f.n_maps)::bigint as n_maps,
       sum(f.n_mass_in_box)::bigint as n_covered,
       (sum(f.n_face_maps) - sum(f.n_mass_in_box))::bigint as n_zero_sum,
       sum(f.n_negative)::bigint as n_negative,
       sum(f.n_no_face)::bigint as n_no_face,
       sum(f.n_no_data)::bigint as n_no_data
from map_stats as f
left join sites as s on s.run_id = f.run_id and s.site = f.site
where f.stream = 'id' and f.run_id = $run_id and f.stage = $stage and f.branch = $branch
  and ($tokens::integer[] is null or list_contains($tokens, f.token))
group by all
having sum(f.n_face_maps) > 0
order by f.site, f.step;
