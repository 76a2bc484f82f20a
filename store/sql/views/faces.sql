-- faces: face detection on the reference and the generated image, one row per
-- (run_id, sample_key, role); detected = false rows are failed detections (raw.faces in
-- 0001_init.sql documents the columns).  Read like samples
-- (sample directories minus compacted keys, plus segments).
create or replace view faces as
with final as (
    -- sample directories minus compacted samples, plus segments (macros/committed_rows.sql)
    select * from committed_rows('faces')
)

select * from final;
