-- face_mass_samples: per run, sample, UNet part and ID token (stream 'id'), the mean over the sample's maps (the
-- part's sites x steps) of the attention mass in the generated face box and of the box's share of
-- the map's cells (n_box_cells / n_cells: what a uniform map puts in the box), from the
-- precomputed map_face_mass view (no map is decoded).  Maps with negative values count with the
-- mass of their positive part (n_negative says how many); maps with no value > 0 have no mass and
-- are left out here (face_mass_counts counts them).  params: $run_ids, $stage, $branch, $tokens
-- (null = every token)
select f.run_id, f.sample_key,
       coalesce(s.part, case split_part(f.site, '.', 1)
           when 'down_blocks' then 'down' when 'mid_block' then 'mid' when 'up_blocks' then 'up' end) as part,
       f.token,
       avg(f.mass_in_box) as mass,
       avg(f.n_box_cells::double / f.n_cells) as share,
       count(*) as n_maps,
       count(*) filter (where f.has_negative) as n_negative
from map_face_mass as f
left join sites as s on s.run_id = f.run_id and s.site = f.site
where f.stream = 'id' and list_contains($run_ids, f.run_id) and f.stage = $stage and f.branch = $branch
  and ($tokens::integer[] is null or list_contains($tokens, f.token))
  and f.mass_in_box is not null
group by all
order by all;
