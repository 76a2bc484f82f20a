-- report_metric_summary: per (run, subset, metric, model) over the run's ok samples: how many
-- samples the subset has (n_ok), how many have a row for the metric (n_rows; n_missing =
-- n_ok - n_rows were never evaluated), how many rows have a value (n; null = undefined, e.g.
-- id_sim without a detected face), mean / sd / min / max of the values, and n_zero (rows with
-- value 0: for face_detected this is the face fail count, FFC).
-- subset: 'joint' (every ok sample), 'realistic', 'stylistic' (samples.category).
-- params: $runs (comma-separated run ids; '' = every run)
with chosen as (
    select run_id, sample_key, category
    from samples
    where status = 'ok'
      and ($runs = '' or list_contains(string_split($runs, ','), run_id))
),

subsets as (
    select run_id, sample_key, 'joint' as subset from chosen
    union all
    select run_id, sample_key, category as subset from chosen
),

sample_counts as (
    select run_id, subset, count(*) as n_ok
    from subsets
    group by run_id, subset
),

vals as (
    select x.run_id, x.subset, m.name, m.model, m.value
    from subsets as x
    join metrics as m on m.run_id = x.run_id and m.sample_key = x.sample_key
),

agg as (
    select
        run_id, subset, name, model,
        count(*) as n_rows,
        count(value) as n,
        avg(value) as mean,
        stddev_samp(value) as sd,
        min(value) as min,
        max(value) as max,
        count(*) filter (where value = 0) as n_zero
    from vals
    group by run_id, subset, name, model
),

final as (
    select a.run_id, a.subset, a.name, a.model, c.n_ok, a.n_rows, c.n_ok - a.n_rows as n_missing,
           a.n, a.mean, a.sd, a.min, a.max, a.n_zero
    from agg as a
    join sample_counts as c on c.run_id = a.run_id and c.subset = a.subset
)

select * from final
order by run_id, subset, name, model;
