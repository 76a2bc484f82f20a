-- faces_generated: generated-face rows of the chosen runs with their sample (no embeddings).
-- params: $run_ids
select f.run_id, f.sample_key, s.identity, s.prompt, s.category, s.seed,
       f.detected, f.area_ratio, f.similarity, f.score, f.backend
from faces as f
join samples as s on s.run_id = f.run_id and s.sample_key = f.sample_key
where f.role = 'generated' and s.status = 'ok' and list_contains($run_ids, f.run_id)
order by f.run_id, s.identity, s.prompt, s.seed;
