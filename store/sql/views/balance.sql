-- balance: the ID-versus-text balance of the decoupled cross-attention blocks, one row per
-- (run_id, sample_key, site, step, branch) of samples captured with a probe (raw.balance in
-- migrations/0005_balance_words.sql defines text_norm and id_norm: the mean over queries of
-- the per-query L2 norm of the text term Attention(Q, K, V) and of the ID term
-- lambda * A~ V', before to_out).  Derived columns:
--   part        'down' | 'mid' | 'up' (from the site name)
--   id_ratio    id_norm / text_norm (null when text_norm = 0)
--   id_share    id_norm / (id_norm + text_norm) (null when both are 0)
--   id_share_in_box, id_share_out_box   the same share inside / outside the generated face
--               box (null when no face was detected)
-- The per-query norm maps (text_norm_map, id_norm_map: height x width, row-major) measure any
-- other region.
create or replace view balance as
with source as (
    select * from committed_rows('balance')
),

final as (
    select
        run_id, sample_key, site,
        case split_part(site, '.', 1)
            when 'down_blocks' then 'down' when 'mid_block' then 'mid' when 'up_blocks' then 'up'
        end as part,
        step, timestep, branch, n_rows, n_queries, text_norm, id_norm,
        id_norm / nullif(text_norm, 0) as id_ratio,
        id_norm / nullif(id_norm + text_norm, 0) as id_share,
        n_box_cells, text_norm_in_box, id_norm_in_box, text_norm_out_box, id_norm_out_box,
        id_norm_in_box / nullif(id_norm_in_box + text_norm_in_box, 0) as id_share_in_box,
        id_norm_out_box / nullif(id_norm_out_box + text_norm_out_box, 0) as id_share_out_box,
        height, width, text_norm_map, id_norm_map
    from source
)

select * from final;
