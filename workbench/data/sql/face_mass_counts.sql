-- face_mass_counts: per run, UNet part and ID token (stream 'id'), how many maps the face-mass averages cover and
-- how many they leave out and why, from the pre-aggregated map_stats view (migration 0003):
--   n_maps       maps captured;  n_covered  maps with a face mass (averaged)
--   n_no_face    maps of samples without a detected generated face
--   n_no_data    maps stored without values (encoding 'none')
--   n_zero_sum   maps on a detected face with no value > 0 (mass undefined)
--   n_negative   maps with a value < 0 (counted, on their positive part; among all maps)
-- params: $run_ids, $stage, $branch, $tokens (null = every token)
select m.run_id,
       coalesce(s.part, case split_part(m.site, '.', 1)
           when 'down_blocks' then 'down' when 'mid_block' then 'mid' when 'up_blocks' then 'up' end) as part,
       m.token,
       sum(m.n_maps)::bigint as n_maps,
       sum(m.n_mass_in_box)::bigint as n_covered,
       sum(m.n_no_face)::bigint as n_no_face,
       sum(m.n_no_data)::bigint as n_no_data,
       (sum(m.n_face_maps) - sum(m.n_mass_in_box))::bigint as n_zero_sum,
       sum(m.n_negative)::bigint as n_negative
from map_stats as m
left join sites as s on s.run_id = m.run_id and s.site = m.site
where m.stream = 'id' and list_contains($run_ids, m.run_id) and m.stage = $stage and m.branch = $branch
  and ($tokens::integer[] is null or list_contains($tokens, m.token))
group by all
order by all;
