-- store_guard(): one row (ok = true) when the folder that store_root() found is this
-- catalog's store; an error otherwise.  Every view that reads files filters on it, so a
-- catalog never answers silently from another store's folder:
--   * data/store_id.parquet in the folder must hold this catalog's store id (a catalog of
--     store B ATTACHed to a connection that opened store A's catalog is refused);
--   * exactly one attached catalog may hold this store id (two copies of one store
--     attached to one connection are refused: their views would read the same folder).
-- A copy of a store has the same id as the original; each copy's views read the folder
-- of the catalog file that the connection opened.
create or replace macro store_guard() as table
with checks as (
    select
        (
            select count(*) from duckdb_views()
            where view_name = 'store_identity' and contains(sql, {{ store_id }})
        ) as n_catalogs,
        (
            select any_value(store_id)
            from read_parquet(store_root() || '/data/store_id.parquet')
        ) as found_id
),

final as (
    select
        case
            when n_catalogs > 1
                then error(
                    'store catalog: ' || n_catalogs::varchar || ' catalogs of store ' || {{ store_id }}
                    || ' are attached to this connection (copies of one store); their views would all '
                    || 'read ' || store_root() || '. Query each copy from its own connection')
            when found_id is distinct from {{ store_id }}
                then error(
                    'store catalog: this catalog belongs to store ' || {{ store_id }} || ', but '
                    || store_root() || '/data/store_id.parquet names store ' || coalesce(found_id, 'NULL')
                    || '. Open this catalog as the connection''s own database, or after ATTACH '
                    || 'SET temp_directory = ''<its folder>/catalog.duckdb.tmp''')
            else true
        end as ok
    from checks
)

select * from final;
