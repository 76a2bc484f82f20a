-- maps: attention maps and their summaries, one row per (run_id, sample_key, site, step,
-- branch, token, head, stage) (raw.maps in 0001_init.sql documents the columns; data holds
-- encoded values: use map_values for decoded FLOAT values).  Read like samples (sample
-- directories minus compacted keys, plus segments).
create or replace view maps as
with final as (
    -- sample directories minus compacted samples, plus segments (macros/committed_rows.sql)
    select * from committed_rows('maps')
)

select * from final;
