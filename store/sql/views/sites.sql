-- sites: attention sites (processors) of each run, one row per (run_id, site).  Writers write a
-- site with the first sample they commit, so a site usually has several identical raw rows;
-- one is kept.  n_variants counts the distinct definitions seen (must be 1: contract
-- sites_conflicting).  Columns: raw.sites (0001_init.sql) + n_rows, n_variants.
create or replace view sites as
with source as (
    select *
    from read_parquet(store_root() || '/data/*/*/sites.parquet', union_by_name = true, filename = true, hive_partitioning = false)
    where (select ok from store_guard())
),

counted as (
    select
        *,
        count(*) over (partition by run_id, site) as n_rows,
        count(distinct (part, block, attention, layer, attn, heads, height, width))
            over (partition by run_id, site) as n_variants
    from source
),

final as (
    select * exclude (filename)
    from counted
    qualify row_number() over (partition by run_id, site order by filename) = 1
)

select * from final;
