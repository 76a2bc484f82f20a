-- report_metric_keys: the (run, sample, metric, model) keys already in the store for the chosen
-- runs: `fastface evaluate` computes only the keys missing here (incremental, resumable).
-- params: $runs (comma-separated run ids; '' = every run)
select run_id, sample_key, name, model
from metrics
where $runs = '' or list_contains(string_split($runs, ','), run_id);
