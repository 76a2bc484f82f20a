-- param_text(v): a JSON parameter value as text, the way `fastface capture --vary` writes it
-- (run_params, grid_cells): numbers and names as they are ('1.45', 'am2'), true/false, lists
-- joined by '/' ('down/up', '7.5/5.0/5.0/5.0'); null for null (an unset optional field).
create or replace macro param_text(v) as (
    case
        when v is null or json_type(v) = 'NULL' then null
        when json_type(v) = 'ARRAY' then array_to_string(json_extract_string(v, '$[*]'), '/')
        else json_extract_string(v, '$')
    end
);
