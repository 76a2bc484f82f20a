-- map_values: maps with `values FLOAT[]` decoded (row-major, height * width values) instead of
-- the encoded `data`: 'f16' -> f16_to_float(bits), 'u8' -> FLOAT(q * scale) (product in DOUBLE),
-- 'none' -> NULL.  Equals store.encode.decode_map.
create or replace view map_values as
with source as (
    select * from maps
),

decoded as (
    select
        * exclude (data),
        case encoding
            when 'f16' then list_transform(data, lambda h: f16_to_float(h))
            when 'u8' then list_transform(data, lambda q: (q * scale)::float)
        end as values
    from source
),

final as (
    select * from decoded
)

select * from final;
