-- variants: one (identity, prompt, seed) under each chosen run, with its image and generated face.
-- params: $run_ids, $identity, $prompt, $seed
select s.run_id, s.sample_key, s.status, s.error, s.width, s.height, s.image_png, s.id_image_path,
       s.gen_seconds,
       g.detected, g.x0, g.y0, g.x1, g.y1, g.similarity, g.area_ratio, g.score
from samples as s
left join faces as g
    on g.run_id = s.run_id and g.sample_key = s.sample_key and g.role = 'generated'
where list_contains($run_ids, s.run_id)
  and s.identity = $identity and s.prompt = $prompt and s.seed = $seed
order by s.run_id;
