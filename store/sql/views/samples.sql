-- samples: one row per committed sample, ok or failed (raw.samples in 0001_init.sql documents
-- the columns).  Rows come from sample directories (run_id and sample_key taken from the
-- hive path run=<id>/sample=<key>, so filters on them prune files) and from compacted
-- segments; a sample in both (a compacted directory kept for the retention period) is shown
-- once (macros/committed_rows.sql).  image_png is the PNG of
-- the generated image: select it only when needed (Parquet reads only the selected columns).
create or replace view samples as
with final as (
    -- sample directories minus compacted samples, plus segments (macros/committed_rows.sql)
    select * from committed_rows('samples')
)

select * from final;
