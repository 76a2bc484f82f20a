-- maps_on_screen: the encoded maps shown by the overlay: given samples, sites, one step, branch,
-- tokens (summed on screen) and stage (decoded in Python with store.encode.decode_map).
-- params: $run_ids, $sample_keys, $sites, $step, $branch, $tokens, $stage
select run_id, sample_key, site, token, head, height, width, encoding, scale, data, max, mean
from maps
where stream = 'id' and list_contains($run_ids, run_id)
  and list_contains($sample_keys, sample_key)
  and list_contains($sites, site)
  and step = $step and branch = $branch and list_contains($tokens, token) and stage = $stage
  and encoding <> 'none';
