-- map_face_mass_at(thr): how much of each map lies on the generated face.
--
-- One row per map with data (map_values.values not null) of an ok sample whose generated
-- face was detected (faces.role = 'generated' and detected).  Geometry, all in image pixels
-- of the generated image (samples.width x samples.height):
--   * cell k of a (map_height x map_width) map (row-major, k = 0..n-1) has its centre at
--       cx = (k % map_width + 0.5) * image_width / map_width,
--       cy = (k // map_width + 0.5) * image_height / map_height;
--   * box cells: centre inside the closed face box x0 <= cx <= x1 and y0 <= cy <= y1;
--   * ellipse cells (landmark face mask): let the 5 keypoints (kps = x1,y1,...,x5,y5: eyes,
--     nose, mouth corners) span [kx_min, kx_max] x [ky_min, ky_max]; the ellipse is centred on
--     that span's centre with semi-axes a = 1.0 * (kx_max - kx_min) (twice the half-width) and
--     b = 1.25 * (ky_max - ky_min) (2.5 times the half-height), which covers forehead and chin;
--     a cell counts when ((cx - ex) / a)^2 + ((cy - ey) / b)^2 <= 1 (null when a or b is 0);
--   * threshold cells: value >= thr * max(values)  (null when max <= 0).
-- Columns: the map key columns, n_cells, n_box_cells, n_ellipse_cells, n_thr_cells,
--   mass_in_box = sum(max(v, 0) on box cells) / sum(max(v, 0)): the share of the map's positive
--   part on the face (attention weights are >= 0; only AdaIN-blended 'post' maps of AM2 have
--   negative values, and a 'u8' map decodes to exactly this positive part: store/VIEWS.md,
--   "Maps with negative values"), mass_in_ellipse (same on ellipse cells); both null only when
--   no value is > 0.  iou_box = |thr & box| / |thr | box|, iou_ellipse (same with the ellipse),
--   iou_threshold = thr, has_negative = the map has a value < 0 (counted, not excluded).
create or replace macro map_face_mass_at(thr) as table
with map_rows as (
    select
        run_id, sample_key, site, step, timestep, branch, stream, word, token, head, head_reduction, stage,
        height as map_height, width as map_width, values,
        list_min(values) as v_min, list_max(values) as v_max,
        list_sum(list_transform(values, lambda v: greatest(v, 0)::double)) as v_sum
    from map_values
    where values is not null
),

generated_faces as (
    select
        f.run_id, f.sample_key, f.x0, f.y0, f.x1, f.y1,
        s.width as image_width, s.height as image_height,
        list_select(f.kps, [1, 3, 5, 7, 9]) as kx,
        list_select(f.kps, [2, 4, 6, 8, 10]) as ky
    from faces as f
    join samples as s on s.run_id = f.run_id and s.sample_key = f.sample_key
    where f.role = 'generated' and f.detected and s.status = 'ok'
),

face_geometry as (
    select
        *,
        (list_min(kx) + list_max(kx)) / 2 as ex,
        (list_min(ky) + list_max(ky)) / 2 as ey,
        nullif(1.0 * (list_max(kx) - list_min(kx)), 0) as ea,
        nullif(1.25 * (list_max(ky) - list_min(ky)), 0) as eb
    from generated_faces
),

cells as (
    select
        m.*, g.x0, g.y0, g.x1, g.y1, g.ex, g.ey, g.ea, g.eb, g.image_width, g.image_height,
        list_transform(range(m.map_height * m.map_width), lambda k:
            ((k % m.map_width) + 0.5) * g.image_width / m.map_width between g.x0 and g.x1
            and ((k // m.map_width) + 0.5) * g.image_height / m.map_height between g.y0 and g.y1
        ) as in_box,
        list_transform(range(m.map_height * m.map_width), lambda k:
            pow((((k % m.map_width) + 0.5) * g.image_width / m.map_width - g.ex) / g.ea, 2)
            + pow((((k // m.map_width) + 0.5) * g.image_height / m.map_height - g.ey) / g.eb, 2) <= 1
        ) as in_ellipse,
        list_transform(m.values, lambda v: m.v_max > 0 and v >= thr * m.v_max) as in_thr
    from map_rows as m
    join face_geometry as g on g.run_id = m.run_id and g.sample_key = m.sample_key
),

per_map as (
    select
        run_id, sample_key, site, step, timestep, branch, stream, word, token, head, head_reduction, stage,
        map_height, map_width, image_width, image_height, x0, y0, x1, y1, v_min, v_max, v_sum,
        len(values) as n_cells,
        len(list_filter(in_box, lambda b: b)) as n_box_cells,
        len(list_filter(in_ellipse, lambda b: b)) as n_ellipse_cells,
        len(list_filter(in_thr, lambda b: b)) as n_thr_cells,
        len(list_filter(range(len(values)), lambda k: in_thr[k + 1] and in_box[k + 1])) as n_thr_box_cells,
        len(list_filter(range(len(values)), lambda k: in_thr[k + 1] and in_ellipse[k + 1])) as n_thr_ellipse_cells,
        list_sum(list_transform(values, lambda v, i: case when in_box[i] then greatest(v, 0)::double else 0 end)) as box_sum,
        list_sum(list_transform(values, lambda v, i: case when in_ellipse[i] then greatest(v, 0)::double else 0 end)) as ellipse_sum,
        ea is not null and eb is not null as has_ellipse
    from cells
),

final as (
    select
        run_id, sample_key, site, step, timestep, branch, stream, word, token, head, head_reduction, stage,
        map_height, map_width, image_width, image_height, x0, y0, x1, y1,
        n_cells, n_box_cells,
        case when has_ellipse then n_ellipse_cells end as n_ellipse_cells,
        n_thr_cells,
        case when v_sum > 0 then box_sum / v_sum end as mass_in_box,
        case when v_sum > 0 and has_ellipse then ellipse_sum / v_sum end as mass_in_ellipse,
        case when v_max > 0 and n_thr_cells + n_box_cells - n_thr_box_cells > 0
             then n_thr_box_cells / (n_thr_cells + n_box_cells - n_thr_box_cells) end as iou_box,
        case when v_max > 0 and has_ellipse and n_thr_cells + n_ellipse_cells - n_thr_ellipse_cells > 0
             then n_thr_ellipse_cells / (n_thr_cells + n_ellipse_cells - n_thr_ellipse_cells) end
            as iou_ellipse,
        thr::double as iou_threshold,
        v_min < 0 as has_negative
    from per_map
)

select * from final;
