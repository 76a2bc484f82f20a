-- row_consistency: rules across the columns of one row (the CHECKs of 0001_init.sql, re-checked
-- on what readers see) and the sites' agreement between writers.
with checks as (
    select 'samples' as table_name, run_id, sample_key,
           'status ok needs image/size and no error; failed needs an error' as detail
    from samples
    where not ((status = 'ok' and error is null and image_png is not null and width > 0 and height > 0)
               or (status = 'failed' and error is not null))
    union all
    select 'maps', run_id, sample_key, 'data null iff encoding none: ' || concat_ws('/', site, step, branch, token, head, stage)
    from maps where (encoding = 'none') <> (data is null)
    union all
    select 'maps', run_id, sample_key, 'len(data) <> height * width: ' || concat_ws('/', site, step, branch, token, head, stage)
    from maps where data is not null and len(data) <> height * width
    union all
    select 'maps', run_id, sample_key, 'u8 needs scale and codes <= 255: ' || concat_ws('/', site, step, branch, token, head, stage)
    from maps where encoding = 'u8' and (scale is null or list_max(data) > 255)
    union all
    select 'maps', run_id, sample_key, 'head -1 iff reduced: ' || concat_ws('/', site, step, branch, token, head, stage)
    from maps where (head = -1) <> (head_reduction <> 'none')
    union all
    select 'maps', run_id, sample_key, 'hist needs 34 bins summing to n_values: ' || concat_ws('/', site, step, branch, token, head, stage)
    from maps where hist is not null and (len(hist) <> 34 or list_sum(hist) <> n_values)
    union all
    select 'faces', run_id, sample_key, 'undetected face with geometry/embedding/similarity'
    from faces
    where not detected and (x0 is not null or kps is not null or embedding is not null or similarity is not null)
    union all
    select 'faces', run_id, sample_key, 'detected face without bbox'
    from faces where detected and (x0 is null or y0 is null or x1 is null or y1 is null)
    union all
    select 'faces', run_id, sample_key, 'kps must have 10 values'
    from faces where kps is not null and len(kps) <> 10
    union all
    select 'faces', run_id, sample_key, 'reference row with a similarity'
    from faces where role = 'reference' and similarity is not null
    union all
    select 'sites', run_id, null, site || ': ' || n_variants::varchar || ' different definitions'
    from sites where n_variants > 1
),

final as (
    select * from checks
)

select * from final;
