-- The workbench query before map_stats (git HEAD~ of workbench/data/sql): the decode / full-scan reference
-- that tests/integration/test_store_summaries.py compares the pre-aggregated query with.
-- face_mass: mean share of attention mass inside the generated face (box and landmark
-- ellipse) per site and step for one run (map_face_mass view, maps of detected faces only),
-- and the counts, recomputed from map_face_mass and the maps' own columns.
-- params: $run_id, $stage, $branch, $tokens
with fm as (
    select site, step, avg(mass_in_box) as mass_in_box, avg(mass_in_ellipse) as mass_in_ellipse,
           avg(iou_box) as iou_box, count(*) as n_maps, count(mass_in_box) as n_covered
    from map_face_mass
    where run_id = $run_id and stage = $stage and branch = $branch
      and ($tokens::integer[] is null or list_contains($tokens, token))
    group by all
),

mp as (
    select site, step, count(*) filter (where min < 0) as n_negative,
           count(*) filter (where encoding = 'none') as n_no_data,
           count(*) filter (where encoding <> 'none') as n_data, count(*) as n_all
    from maps
    where run_id = $run_id and stage = $stage and branch = $branch
      and ($tokens::integer[] is null or list_contains($tokens, token))
    group by all
)

select fm.site,
       coalesce(s.part, split_part(fm.site, '.', 1)) as part,
       fm.step, fm.mass_in_box, fm.mass_in_ellipse, fm.iou_box, mp.n_all as n_maps, fm.n_covered,
       fm.n_maps - fm.n_covered as n_zero_sum, mp.n_negative, mp.n_data - fm.n_maps as n_no_face, mp.n_no_data
from fm
join mp on mp.site = fm.site and mp.step = fm.step
left join sites as s on s.run_id = $run_id and s.site = fm.site
order by fm.site, fm.step;
