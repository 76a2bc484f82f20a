-- metric_values: per-sample metric values of the chosen runs, keyed by (identity, prompt, seed)
-- for pairing, with the model that computed each value (a metric computed by several models is
-- several series, never averaged together: workbench/data/metric_names.py names them); the
-- generated face's similarity is added as metric 'face_similarity' (faces view).
-- params: $run_ids
select m.run_id, m.name, m.model, s.identity, s.prompt, s.seed, m.value
from metrics as m
join samples as s on s.run_id = m.run_id and s.sample_key = m.sample_key
where list_contains($run_ids, m.run_id) and s.status = 'ok'
union all
select f.run_id, 'face_similarity' as name, f.backend as model, s.identity, s.prompt, s.seed, f.similarity
from faces as f
join samples as s on s.run_id = f.run_id and s.sample_key = f.sample_key
where list_contains($run_ids, f.run_id) and s.status = 'ok' and f.role = 'generated' and f.detected;
