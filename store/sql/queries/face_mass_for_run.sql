-- face_mass_for_run: map_face_mass_at($thr) for one run (thr: threshold fraction of the map max).
-- thr = 0.5 reads the precomputed rows (map_face_mass view, written with each sample); any other
-- threshold decodes the run's maps (map_face_mass_at), which takes minutes at paper scale.
-- params: $run_id, $thr
with rows_of_run as (
    select * from map_face_mass where $thr = 0.5 and run_id = $run_id
    union all by name
    select * from map_face_mass_at($thr) where $thr <> 0.5 and run_id = $run_id
)

select *
from rows_of_run
order by sample_key, site, step, branch, stream, word, token, head, stage;
