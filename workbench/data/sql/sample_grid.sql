-- sample_grid: generated images of the chosen runs matching the filters (a page of them).
-- params: $run_ids, $identity, $prompt, $category (null = any), $limit, $offset
select s.run_id, s.sample_key, s.identity, s.prompt, s.category, s.seed, s.status, s.error,
       s.image_png
from samples as s
where list_contains($run_ids, s.run_id)
  and ($identity::varchar is null or s.identity = $identity)
  and ($prompt::varchar is null or s.prompt = $prompt)
  and ($category::varchar is null or s.category = $category)
order by s.identity, s.prompt, s.seed, s.run_id
limit $limit offset $offset;
