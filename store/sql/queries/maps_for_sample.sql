-- maps_for_sample: the maps of one sample with decoded `values` (FLOAT[], row-major).
-- params: $run_id, $sample_key
select *
from map_values
where run_id = $run_id and sample_key = $sample_key
order by site, step, branch, stream, word, token, head, stage;
