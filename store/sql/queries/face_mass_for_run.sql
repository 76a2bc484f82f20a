-- face_mass_for_run: map_face_mass_at($thr) for one run (thr: threshold fraction of the map max).
-- params: $run_id, $thr
select *
from map_face_mass_at($thr)
where run_id = $run_id
order by sample_key, site, step, branch, token, head, stage;
