-- Example queries of the SQL page, separated by lines '-- name: <title>'.  They are shown to
-- the user and run in the sandbox (workbench.data.sql_console), never with parameters.
-- name: Runs and their status
select run_id, preset, checkpoint, ip_scale, status, n_done, n_total from runs order by created_at desc;
-- name: Samples per run and category
select run_id, category, status, count(*) as n from samples group by all order by all;
-- name: Face fail count (FFC) and mean similarity per run
select run_id, n_evaluated, ffc, ffc_rate, mean_similarity from face_summary order by run_id;
-- name: Mean attention entropy per step and UNet part
select run_id, step, part, stage, avg_entropy, avg_max from step_summary order by run_id, part, stage, step;
-- name: Sites with the most face-region attention mass
select run_id, site, stage, avg(mass_in_box) as mass_in_box, count(*) as n_maps
from map_face_mass where stream = 'id' group by all order by mass_in_box desc limit 20;
-- name: Metrics per run
select run_id, name, model, avg(value) as mean, count(*) as n from metrics group by all order by all;
-- name: Decoded values of one map
select run_id, sample_key, site, step, stage, height, width, values[1:8] as first_values
from map_values limit 5;
