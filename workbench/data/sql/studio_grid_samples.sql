-- studio_grid_samples: every sample of a grid's runs with the run's coordinates (as text, keyed
-- by path), its image and its generated face (similarity, size, box) and its metrics by name.
-- params: $grid
with cells as (
    select run_id, map_from_entries(list(struct_pack(k := path, v := coalesce(text, 'none')))
                                    filter (where path is not null)) as coords,
           any_value(label) as label
    from grid_cells
    where grid = $grid
    group by run_id
),

metric_values as (
    select run_id, sample_key, map_from_entries(list(struct_pack(k := name, v := value))) as metrics
    from metrics
    where run_id in (select run_id from cells)
    group by run_id, sample_key
)

select c.run_id, c.coords, c.label, s.sample_key, s.identity, s.prompt, s.seed, s.status, s.error,
       s.image_png, s.width, s.height,
       g.detected, g.similarity, g.area_ratio, g.x0, g.y0, g.x1, g.y1,
       m.metrics
from cells as c
join samples as s on s.run_id = c.run_id
left join faces as g on g.run_id = s.run_id and g.sample_key = s.sample_key and g.role = 'generated'
left join metric_values as m on m.run_id = s.run_id and m.sample_key = s.sample_key
order by s.identity, s.prompt, s.seed, c.run_id;
