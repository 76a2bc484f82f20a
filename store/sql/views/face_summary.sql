-- face_summary: per run (every run, also without samples): face detection outcome.
--   n_samples        committed samples (ok + failed)
--   n_ok, n_failed   by status
--   n_evaluated      ok samples with a generated-face row (face detection ran)
--   n_not_evaluated  ok samples without one (n_ok - n_evaluated)
--   n_faces_detected ok samples whose generated face was detected
--   ffc              face fail count: evaluated ok samples whose generated face was NOT detected
--   ffc_rate         ffc / n_evaluated (null when nothing was evaluated)
--   n_reference_not_detected  samples whose reference face was not detected
--   n_similarity     detected generated faces with a similarity
--   mean_similarity  mean similarity over detected generated faces only
create or replace view face_summary as
with sample_faces as (
    select
        s.run_id, s.sample_key, s.status,
        g.detected as generated_detected, g.similarity,
        r.detected as reference_detected
    from samples as s
    left join faces as g on g.run_id = s.run_id and g.sample_key = s.sample_key and g.role = 'generated'
    left join faces as r on r.run_id = s.run_id and r.sample_key = s.sample_key and r.role = 'reference'
),

per_run as (
    select
        run_id,
        count(*) as n_samples,
        count(*) filter (where status = 'ok') as n_ok,
        count(*) filter (where status = 'failed') as n_failed,
        count(*) filter (where status = 'ok' and generated_detected is not null) as n_evaluated,
        count(*) filter (where status = 'ok' and generated_detected) as n_faces_detected,
        count(*) filter (where status = 'ok' and not generated_detected) as ffc,
        count(*) filter (where reference_detected = false) as n_reference_not_detected,
        count(similarity) filter (where status = 'ok' and generated_detected) as n_similarity,
        avg(similarity) filter (where status = 'ok' and generated_detected) as mean_similarity
    from sample_faces
    group by run_id
),

final as (
    select
        runs.run_id,
        coalesce(p.n_samples, 0) as n_samples,
        coalesce(p.n_ok, 0) as n_ok,
        coalesce(p.n_failed, 0) as n_failed,
        coalesce(p.n_evaluated, 0) as n_evaluated,
        coalesce(p.n_ok, 0) - coalesce(p.n_evaluated, 0) as n_not_evaluated,
        coalesce(p.n_faces_detected, 0) as n_faces_detected,
        coalesce(p.ffc, 0) as ffc,
        p.ffc / nullif(p.n_evaluated, 0) as ffc_rate,
        coalesce(p.n_reference_not_detected, 0) as n_reference_not_detected,
        coalesce(p.n_similarity, 0) as n_similarity,
        p.mean_similarity
    from runs
    left join per_run as p on p.run_id = runs.run_id
)

select * from final;
