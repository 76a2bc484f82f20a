-- metrics_for_run: the metrics of a run (long format: one row per sample, name and model).
-- params: $run_id
select * from metrics where run_id = $run_id order by sample_key, name, model;
