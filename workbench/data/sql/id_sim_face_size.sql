-- id_sim_face_size: per sample of the chosen runs and per scoring model, the ID similarity and
-- the generated face size written by `fastface evaluate` (metrics id_sim, face_size and
-- face_detected share one model string, '<model>#protocol=<name>'; the capture's own face scorer
-- writes them too, under its backend name). A sample without a detected face has no id_sim /
-- face_size: its row is kept (nulls) so the page can count it. The latest value wins where a
-- metric was written twice.
-- params: $run_ids
select m.run_id, m.sample_key, m.model, s.identity, s.prompt, s.seed,
       arg_max(m.value, m.created_at) filter (where m.name = 'id_sim') as id_sim,
       arg_max(m.value, m.created_at) filter (where m.name = 'face_size') as face_size,
       arg_max(m.value, m.created_at) filter (where m.name = 'face_detected') as face_detected
from metrics as m
join samples as s on s.run_id = m.run_id and s.sample_key = m.sample_key
where list_contains($run_ids, m.run_id) and s.status = 'ok'
  and m.name in ('id_sim', 'face_size', 'face_detected')
group by m.run_id, m.sample_key, m.model, s.identity, s.prompt, s.seed
order by m.run_id, m.model, s.identity, s.prompt, s.seed;
