-- maps_on_screen: the encoded maps shown by the overlay: given samples, sites, one step, branch,
-- ID tokens (summed on screen; stream 'id') or one prompt word ($word not null: its text-attention
-- map, stream 'text', token -1) and stage (decoded in Python with store.encode.decode_map).
-- params: $run_ids, $sample_keys, $sites, $step, $branch, $tokens, $word, $stage
select run_id, sample_key, site, token, head, height, width, encoding, scale, data, max, mean
from maps
where list_contains($run_ids, run_id)
  and (case when $word::varchar is null then stream = 'id' and list_contains($tokens, token)
            else stream = 'text' and word = $word end)
  and list_contains($sample_keys, sample_key)
  and list_contains($sites, site)
  and step = $step and branch = $branch and stage = $stage
  and encoding <> 'none';
