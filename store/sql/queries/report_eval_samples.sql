-- report_eval_samples: the ok samples of the chosen runs, without image bytes: what
-- `fastface evaluate` scores (failed samples have no image and are counted, not scored).
-- params: $runs (comma-separated run ids; '' = every run)
select s.run_id, s.sample_key, s.sample_index, s.identity, s.id_image_path, s.prompt, s.category,
       s.seed, s.width, s.height
from samples as s
where s.status = 'ok'
  and ($runs = '' or list_contains(string_split($runs, ','), s.run_id))
order by s.run_id, s.sample_index nulls last, s.sample_key;
