-- all_rows: every row of the files, in file order (directory order), so the rows of a sample
-- stay together and row-group statistics on sample_key prune.  Tables whose keys must be
-- unique are checked first (<table>_duplicates.sql).
select * from read_parquet($files, union_by_name = true, hive_partitioning = false)
