-- Face mass and entropy of maps with negative values (AdaIN-blended 'post' maps of AM2) are
-- defined on the map's positive part max(v, 0) from this version on (store/VIEWS.md, "Maps
-- with negative values"), and the summary rows count what an average leaves out and why.
-- Summary files written before lack these columns (null in the views) and still hold the old
-- definition: `fastface store backfill --store STORE` rewrites them (store/backfill.py; the
-- marker of a current file is the column n_zero_sum), compaction does it for the directories
-- it merges.

-- Per map row (sample directories) 0 or 1; summed per map key in segments.
alter table raw.map_stats add column n_negative bigint;   -- maps with a value < 0: counted, on their positive part
alter table raw.map_stats add column n_zero_sum bigint;   -- maps with no value > 0: entropy and face mass undefined
alter table raw.map_stats add column n_no_data bigint;    -- maps without stored values (encoding 'none'): no face mass
alter table raw.map_stats add column n_no_face bigint;    -- maps with values of a sample without a detected
                                                          --   generated face (not ok, not evaluated, not detected)

-- Per map: the map has a value < 0 (its mass is that of its positive part).
alter table raw.face_mass add column has_negative boolean;
