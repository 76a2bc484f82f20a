-- Pre-aggregated summaries of the attention maps, written when the maps are written (never by
-- scanning maps at page time): store/summaries.py computes them, StoreWriter.write_sample
-- writes one row per map into the sample's directory (map_stats.parquet, face_mass.parquet),
-- compaction merges them into the segment (map_stats summed over the segment's samples,
-- face_mass concatenated) and `fastface store backfill` writes them for stores made before.

-- Additive partial sums of the map summaries per map key.  In a sample directory one row per
-- map of that sample (n_maps = n_samples = 1); in a segment one row per map key, summed over
-- the segment's samples (sample_key null).  Sum every column over rows to aggregate further:
-- avg(x) = sum(sum_x) / sum(n_x).  The map_stats view does that per run and map key.
create table raw.map_stats (
    run_id            varchar not null,   -- the run
    sample_key        varchar,            -- the sample (sample directories); null in segments
    site              varchar not null,   -- map key: raw.maps (site, step, branch, token, head,
    step              integer not null,   --   head_reduction, stage, height, width)
    branch            varchar not null,
    token             integer not null,
    head              integer not null,
    head_reduction    varchar not null,
    stage             varchar not null,
    height            integer not null,
    width             integer not null,
    n_maps            bigint  not null check (n_maps > 0),  -- maps summed
    n_samples         bigint  not null check (n_samples > 0),  -- distinct samples among them
    n_data            bigint  not null,   -- maps with stored values (encoding <> 'none')
    n_hist            bigint  not null,   -- maps with a histogram
    sum_timestep      double,             -- sum of non-null timestep; n_timestep: how many
    n_timestep        bigint  not null,
    sum_mean          double,  n_mean     bigint not null,   -- sum / count of non-null maps.mean
    sum_std           double,  n_std      bigint not null,
    sum_max           double,  n_max      bigint not null,
    sum_q99           double,  n_q99      bigint not null,
    sum_entropy       double,  n_entropy  bigint not null,
    sum_peak_ratio    double,             -- sum of max / mean over maps with mean <> 0
    n_peak_ratio      bigint  not null,
    hist              bigint[],           -- element-wise sum of maps.hist (34 bins); null when n_hist = 0
    n_face_maps       bigint  not null,   -- maps that have a map_face_mass row (thr 0.5)
    sum_mass_in_box   double,  n_mass_in_box     bigint not null,  -- sums / counts of the non-null
    sum_mass_in_ellipse double, n_mass_in_ellipse bigint not null,  -- map_face_mass columns
    sum_iou_box       double,  n_iou_box         bigint not null,
    sum_iou_ellipse   double,  n_iou_ellipse     bigint not null,
    schema_version    integer not null,   -- migration version of the writer
    primary key (run_id, site, step, branch, token, head, head_reduction, stage, height, width),
    check (hist is null or len(hist) = 34),
    check (n_samples <= n_maps)
);

-- map_face_mass_at(0.5) precomputed: one row per map with data of an ok sample whose generated
-- face was detected (definitions: store/sql/macros/map_face_mass_at.sql).  Written with the
-- sample (faces are written with their sample); segments concatenate them.
create table raw.face_mass (
    run_id          varchar not null,
    sample_key      varchar not null,
    site            varchar not null,
    step            integer not null,
    timestep        double,
    branch          varchar not null,
    token           integer not null,
    head            integer not null,
    head_reduction  varchar not null,
    stage           varchar not null,
    map_height      integer not null,
    map_width       integer not null,
    image_width     integer,
    image_height    integer,
    x0              double,
    y0              double,
    x1              double,
    y1              double,
    n_cells         bigint  not null,
    n_box_cells     bigint,
    n_ellipse_cells bigint,
    n_thr_cells     bigint,
    mass_in_box     double,
    mass_in_ellipse double,
    iou_box         double,
    iou_ellipse     double,
    iou_threshold   double  not null,
    schema_version  integer not null,
    primary key (run_id, sample_key, site, step, branch, token, head, stage)
);
