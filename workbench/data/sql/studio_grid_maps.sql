-- studio_grid_maps: the encoded maps of a grid figure's overlay: given runs, one sample, sites,
-- one step, ID tokens (stream 'id') and stage of the conditioned branch (decoded and summed in Python).
-- params: $run_ids, $sample_key, $sites, $step, $tokens, $stage
select run_id, site, token, head, height, width, encoding, scale, data
from maps
where stream = 'id' and list_contains($run_ids, run_id)
  and sample_key = $sample_key
  and list_contains($sites, site)
  and step = $step and list_contains($tokens, token) and stage = $stage
  and branch = 'text_id' and head = -1
  and encoding <> 'none';
