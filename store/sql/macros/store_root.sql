-- store_root(): the folder of the store, found from the catalog file that this connection
-- opened, so that a moved, copied or re-mounted store reads its own files.  DuckDB sets
-- temp_directory to '<database file>.tmp' for the database a connection opens
-- (duckdb.connect('STORE/catalog.duckdb') -> 'STORE/catalog.duckdb.tmp'); the store is the
-- folder of that file.  Every view reads its Parquet files under store_root().
--   * a connection whose temp_directory is not '<folder>/catalog.duckdb.tmp' (an in-memory
--     connection that ATTACHed the catalog, or a changed temp_directory) gets an error
--     instead of a guess: SET temp_directory = 'STORE/catalog.duckdb.tmp' after ATTACH;
--   * a folder name with glob characters (* ? [ ] { }) is refused: read_parquet would
--     expand them.
-- store_guard() checks that the folder found is this catalog's store.
create or replace macro store_root() as (
    case
        when parse_filename(current_setting('temp_directory')) <> 'catalog.duckdb.tmp'
            then error(
                'store catalog: open STORE/catalog.duckdb as the connection''s database '
                || '(duckdb.connect(''STORE/catalog.duckdb'', read_only=True) or duckdb -readonly '
                || 'STORE/catalog.duckdb); after ATTACH run SET temp_directory = '
                || '''STORE/catalog.duckdb.tmp''. The views find the store folder through '
                || 'temp_directory, which is now ''' || current_setting('temp_directory') || '''')
        when regexp_matches(parse_dirpath(current_setting('temp_directory')), '[*?\[\]{}]')
            then error(
                'store catalog: the store folder ' || parse_dirpath(current_setting('temp_directory'))
                || ' contains glob characters (* ? [ ] { }) that read_parquet would expand; '
                || 'move the store to a folder without them')
        else coalesce(nullif(parse_dirpath(current_setting('temp_directory')), ''), '.')
    end
);
