-- runs_overview: every run with its latest status and face summary, newest first.
select
    runs.run_id, runs.name, runs.preset, runs.checkpoint, runs.ip_scale, runs.lora_scale,
    runs.created_at, runs.status, runs.status_at, runs.n_total,
    f.n_samples, f.n_ok, f.n_failed, f.ffc, f.ffc_rate, f.mean_similarity
from runs
left join face_summary as f on f.run_id = runs.run_id
order by runs.created_at desc;
