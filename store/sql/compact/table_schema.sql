-- table_schema: the columns (name, type) of one typed raw.* table of the connection.
select column_name, data_type as column_type
from information_schema.columns
where table_schema = 'raw' and table_name = $table
order by ordinal_position
