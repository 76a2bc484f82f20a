-- maps_entropy_fix: the rows of one maps.parquet ($path) in file order, with the entropy of the
-- rows listed in $fixes (Parquet: row = file row number, entropy) replaced: `fastface store
-- backfill` of maps written before migration 0003, whose entropy was null for any negative
-- value (now: the entropy of the positive part, store/summaries.py positive_entropy).
-- params: $path, $fixes
with source as (
    select * from read_parquet($path, file_row_number = true, hive_partitioning = false)
),

fixes as (
    select "row", entropy from read_parquet($fixes)
),

final as (
    select m.* exclude (file_row_number, entropy), coalesce(f.entropy, m.entropy) as entropy, m.file_row_number
    from source as m
    left join fixes as f on f."row" = m.file_row_number
)

select * exclude (file_row_number) from final
order by file_row_number
