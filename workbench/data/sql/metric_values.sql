-- metric_values: per-sample metric values of the chosen runs, keyed by (identity, prompt, seed)
-- for pairing; the generated face's similarity is added as metric 'face_similarity' (faces view).
-- A metric name computed by more than one model among the chosen runs (e.g. id_sim by
-- insightface/buffalo_l@.. and by dlib/..@.., or by two versions) is split into one series per
-- model, named '<name> @ <model>', so that values of different models are never averaged.
-- params: $run_ids
with chosen as (
    select m.run_id, m.name, m.model, s.identity, s.prompt, s.seed, m.value
    from metrics as m
    join samples as s on s.run_id = m.run_id and s.sample_key = m.sample_key
    where list_contains($run_ids, m.run_id) and s.status = 'ok'
),

multi as (
    select name from chosen group by name having count(distinct model) > 1
)

select run_id,
       case when name in (select name from multi) then name || ' @ ' || model else name end as name,
       model, identity, prompt, seed, value
from chosen
union all
select f.run_id, 'face_similarity' as name, f.backend as model, s.identity, s.prompt, s.seed, f.similarity
from faces as f
join samples as s on s.run_id = f.run_id and s.sample_key = f.sample_key
where list_contains($run_ids, f.run_id) and s.status = 'ok' and f.role = 'generated' and f.detected;
