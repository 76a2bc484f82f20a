-- param_number(v): a JSON parameter value as DOUBLE (run_params, grid_cells): numbers as they
-- are, true/false as 1/0, a one-value list (a constant per-step schedule, e.g. [0.7]) as its
-- value; null for text, longer lists and null.
create or replace macro param_number(v) as (
    case
        when json_type(v) in ('DOUBLE', 'UBIGINT', 'BIGINT') then v::double
        when json_type(v) = 'BOOLEAN' then v::boolean::integer::double
        when json_type(v) = 'ARRAY' and json_array_length(v) = 1
            and json_type(v, '$[0]') in ('DOUBLE', 'UBIGINT', 'BIGINT') then json_extract(v, '$[0]')::double
    end
);
