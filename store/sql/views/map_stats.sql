-- map_stats: the map summaries pre-aggregated per (run_id, site, step, branch, stream, word, token,
-- head, head_reduction, stage, height, width) (stream 'id' | 'text', word: see the maps view), over the run's samples, without reading a map: sums of
-- the per-map rows that StoreWriter.write_sample writes with every sample (map_stats.parquet,
-- store/summaries.py; compaction sums them per segment).  What the workbench's Attention page
-- reads.  To aggregate further, add the sum_* and n_* columns: avg = sum(sum_x) / sum(n_x).
--   n_maps, n_samples   maps and samples summed (a sample has at most one map per key)
--   n_data, n_hist      maps with stored values / with a histogram
--   sum_x, n_x, avg_x   x = timestep, mean, std, max, q99, entropy (maps columns), peak_ratio
--                       (max / mean, maps with mean <> 0); avg_x = sum_x / n_x
--   hist                maps.hist added bin by bin (34 bins, store.encode.HIST_EDGES)
--   n_face_maps         maps with a map_face_mass row (ok sample, generated face detected,
--                       map with data); sum/n/avg of mass_in_box, mass_in_ellipse, iou_box,
--                       iou_ellipse over them (threshold 0.5)
-- What the averages leave out, and why (migration 0003; null for summary files written before:
-- `fastface store backfill`):
--   n_negative          maps with a value < 0 (AdaIN 'post' maps): NOT left out, their entropy
--                       and face mass are those of the positive part max(v, 0)
--   n_zero_sum          maps with no value > 0: entropy and face mass undefined
--   n_no_data           maps without stored values (encoding 'none'): no face mass
--   n_no_face           maps with values of a sample without a detected generated face
--   n_entropy_excluded  n_maps - n_entropy (= n_zero_sum, plus signed maps of a store written
--                       before 0003 whose values were not stored, so backfill cannot recompute)
--   n_face_mass_excluded  n_maps - n_mass_in_box (= n_no_data + n_no_face + the face maps
--                       with no value > 0)
-- Stores written before these tables existed: `fastface store backfill --store STORE`.
create or replace view map_stats as
with source as (
    select * replace (coalesce(stream, 'id') as stream) from committed_rows('map_stats')
),

summed as (
    select
        run_id, site, step, branch, stream, word, token, head, head_reduction, stage, height, width,
        sum(n_maps)::bigint as n_maps, sum(n_samples)::bigint as n_samples,
        sum(n_data)::bigint as n_data, sum(n_hist)::bigint as n_hist,
        sum(sum_timestep) as sum_timestep, sum(n_timestep)::bigint as n_timestep,
        sum(sum_mean) as sum_mean, sum(n_mean)::bigint as n_mean,
        sum(sum_std) as sum_std, sum(n_std)::bigint as n_std,
        sum(sum_max) as sum_max, sum(n_max)::bigint as n_max,
        sum(sum_q99) as sum_q99, sum(n_q99)::bigint as n_q99,
        sum(sum_entropy) as sum_entropy, sum(n_entropy)::bigint as n_entropy,
        sum(sum_peak_ratio) as sum_peak_ratio, sum(n_peak_ratio)::bigint as n_peak_ratio,
        list(hist) filter (where hist is not null) as hists,
        sum(n_face_maps)::bigint as n_face_maps,
        sum(sum_mass_in_box) as sum_mass_in_box, sum(n_mass_in_box)::bigint as n_mass_in_box,
        sum(sum_mass_in_ellipse) as sum_mass_in_ellipse, sum(n_mass_in_ellipse)::bigint as n_mass_in_ellipse,
        sum(sum_iou_box) as sum_iou_box, sum(n_iou_box)::bigint as n_iou_box,
        sum(sum_iou_ellipse) as sum_iou_ellipse, sum(n_iou_ellipse)::bigint as n_iou_ellipse,
        sum(n_negative)::bigint as n_negative, sum(n_zero_sum)::bigint as n_zero_sum,
        sum(n_no_data)::bigint as n_no_data, sum(n_no_face)::bigint as n_no_face
    from source
    group by run_id, site, step, branch, stream, word, token, head, head_reduction, stage, height, width
),

final as (
    select
        * exclude (hists),
        case when len(hists) > 0 then
            list_transform(range(1, 35), lambda i: list_sum(list_transform(hists, lambda h: h[i])))::bigint[]
        end as hist,
        sum_timestep / nullif(n_timestep, 0) as avg_timestep,
        sum_mean / nullif(n_mean, 0) as avg_mean,
        sum_std / nullif(n_std, 0) as avg_std,
        sum_max / nullif(n_max, 0) as avg_max,
        sum_q99 / nullif(n_q99, 0) as avg_q99,
        sum_entropy / nullif(n_entropy, 0) as avg_entropy,
        sum_peak_ratio / nullif(n_peak_ratio, 0) as avg_peak_ratio,
        sum_mass_in_box / nullif(n_mass_in_box, 0) as avg_mass_in_box,
        sum_mass_in_ellipse / nullif(n_mass_in_ellipse, 0) as avg_mass_in_ellipse,
        sum_iou_box / nullif(n_iou_box, 0) as avg_iou_box,
        sum_iou_ellipse / nullif(n_iou_ellipse, 0) as avg_iou_ellipse,
        n_maps - n_entropy as n_entropy_excluded,
        n_maps - n_mass_in_box as n_face_mass_excluded
    from summed
)

select * from final;
