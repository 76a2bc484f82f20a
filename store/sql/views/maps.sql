-- maps: attention maps and their summaries, one row per (run_id, sample_key, site, step,
-- branch, stream, word, token, head, stage) (raw.maps in 0001_init.sql documents the columns,
-- 0005_balance_words.sql the stream: 'id' = the ID tokens' maps, 'text' = a prompt word's map
-- (token -1, stage 'pre', word = the word); rows written before 0005 read as 'id'; data holds
-- encoded values: use map_values for decoded FLOAT values).  Read like samples (sample
-- directories minus compacted keys, plus segments).
create or replace view maps as
with final as (
    -- sample directories minus compacted samples, plus segments (macros/committed_rows.sql)
    select * replace (coalesce(stream, 'id') as stream) from committed_rows('maps')
)

select * from final;
