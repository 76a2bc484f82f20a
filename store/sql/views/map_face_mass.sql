-- map_face_mass: map_face_mass_at(0.5), i.e. share of each map's mass inside the generated
-- face box and the landmark ellipse, and IoU of the map thresholded at 0.5 * max with the
-- box / ellipse.  Definitions: store/sql/macros/map_face_mass_at.sql; call the macro
-- (select * from map_face_mass_at(0.3)) for another threshold.
create or replace view map_face_mass as
with final as (
    select * from map_face_mass_at(0.5)
)

select * from final;
