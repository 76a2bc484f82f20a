-- sample_index: the (identity, prompt, category, seed) units of the chosen runs, without images
-- (filters of the Samples page).  params: $run_ids
select identity, prompt, category, seed,
       count(distinct run_id) as n_runs,
       count(*) filter (where status = 'ok') as n_ok,
       any_value(id_image_path) as id_image_path
from samples
where list_contains($run_ids, run_id)
group by identity, prompt, category, seed
order by identity, prompt, seed;
