-- f16_to_float(h): decode an IEEE-754 binary16 bit pattern (0..65535, e.g. an element of
-- maps.data when encoding = 'f16') to FLOAT.  Exact for every finite half value.
--   sign s = bit 15, exponent e = bits 10..14, fraction f = bits 0..9
--   e = 0     : subnormal  (-1)^s * f * 2^-24
--   e = 31    : (-1)^s * inf when f = 0, NaN otherwise
--   otherwise : (-1)^s * (1024 + f) * 2^(e - 25)   (= (1 + f/1024) * 2^(e - 15))
create or replace macro f16_to_float(h) as (
    (case when (h::integer >> 15) = 1 then -1.0 else 1.0 end)
    * (case ((h::integer >> 10) & 31)
           when 0 then (h::integer & 1023) * pow(2.0, -24)
           when 31 then (case when (h::integer & 1023) = 0 then 'inf'::double else 'nan'::double end)
           else (1024 + (h::integer & 1023)) * pow(2.0, ((h::integer >> 10) & 31) - 25)
       end)
)::float;
