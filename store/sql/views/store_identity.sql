-- store_identity: one row: the store this catalog belongs to and the folder its views read.
--   store_id  random id given to the store folder when it was created (data/store_id.parquet);
--             a copy of the folder keeps it
--   root      the folder read: the folder of the catalog file the connection opened
--             (macros/store_root.sql); relative when the connection opened a relative path
-- Errors when the folder is not this catalog's store (macros/store_guard.sql).
create or replace view store_identity as
with final as (
    select
        {{ store_id }} as store_id,
        store_root() as root
    from store_guard()
    where ok
)

select * from final;
