-- report_metric_units: per-sample metric values of the chosen runs with the pairing keys
-- (identity, prompt, seed) and the prompt category, for paired bootstrap comparisons.
-- params: $runs (comma-separated run ids; '' = every run)
select m.run_id, m.sample_key, s.identity, s.prompt, s.seed, s.category, m.name, m.model, m.value
from metrics as m
join samples as s on s.run_id = m.run_id and s.sample_key = m.sample_key
where s.status = 'ok'
  and ($runs = '' or list_contains(string_split($runs, ','), m.run_id))
order by m.run_id, m.name, m.model, s.identity, s.prompt, s.seed;
