-- segment_schema: the columns (name, type) of a written segment file, to compare with the typed
-- table's (table_schema.sql): a file with a column the migrations do not define is refused.
select column_name, column_type
from (describe select * from read_parquet($path))
