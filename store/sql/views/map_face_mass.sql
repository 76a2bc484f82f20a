-- map_face_mass: map_face_mass_at(0.5), i.e. share of each map's mass inside the generated
-- face box and the landmark ellipse, and IoU of the map thresholded at 0.5 * max with the
-- box / ellipse.  Definitions: store/sql/macros/map_face_mass_at.sql.  Precomputed: the rows
-- are written with each sample (face_mass.parquet, store/summaries.py; faces are written with
-- their sample) and concatenated by compaction, so this view decodes no map.  Word maps
-- (stream 'text') have rows like the ID maps (stream 'id').  Stores written
-- before: `fastface store backfill --store STORE`.  Call the macro
-- (select * from map_face_mass_at(0.3)) for another threshold: it decodes the maps.
-- Maps with negative values (has_negative) have the mass of their positive part max(v, 0);
-- maps with no value > 0 have null masses; maps of samples without a detected face or maps
-- without values have no row here (map_stats counts them: n_no_face, n_no_data, n_zero_sum).
create or replace view map_face_mass as
with source as (
    select * replace (coalesce(stream, 'id') as stream) from committed_rows('face_mass')
),

final as (
    select
        run_id, sample_key, site, step, timestep, branch, stream, word, token, head, head_reduction, stage,
        map_height, map_width, image_width, image_height, x0, y0, x1, y1,
        n_cells, n_box_cells, n_ellipse_cells, n_thr_cells,
        mass_in_box, mass_in_ellipse, iou_box, iou_ellipse, iou_threshold, has_negative
    from source
)

select * from final;
