-- map_stats_merge: the map_stats rows of several Parquet files summed per run and map key: the
-- rows of a segment (the merge rule of store/segment.py's registry; `fastface store backfill`).
-- Sums of sums and counts; the histograms are added bin by bin; sample_key is dropped (null
-- in segments).  params: $files
with source as (
    -- the typed (empty) table first: files written before migration 0005 have no stream / word
    select * from raw.map_stats
    union all by name
    select * from read_parquet($files, union_by_name = true, hive_partitioning = false)
),

summed as (
    select
        run_id, site, step, branch, coalesce(stream, 'id') as stream, word, token, head, head_reduction, stage,
        height, width,
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
        sum(n_no_data)::bigint as n_no_data, sum(n_no_face)::bigint as n_no_face,
        max(schema_version) as schema_version
    from source
    group by run_id, site, step, branch, coalesce(stream, 'id'), word, token, head, head_reduction, stage, height, width
),

final as (
    select
        * exclude (hists),
        case when len(hists) > 0 then
            list_transform(range(1, 35), lambda i: list_sum(list_transform(hists, lambda h: h[i])))::bigint[]
        end as hist
    from summed
)

select * from final;
