-- 0005_balance_words: the other half of the decoupled block (issue 27).
--
-- raw.balance: per (sample, site, step, branch) the sizes of the two terms of the decoupled
-- cross-attention output  z = Attention(Q, K, V) + lambda * A~ V'  (before to_out), written
-- with the sample whenever a probe is attached (probes/capture.py, CaptureSpec.balance):
--   text_norm = mean over queries of || Attention(Q, K, V)[q, :] ||_2   (L2 over the
--               heads * head_dim channels), averaged over the batch rows of the branch;
--   id_norm   = the same for lambda * A~ V' (after AM and the ip scale, summed over
--               adapters; 0 when lambda = 0).
-- The per-query norms are also kept as small maps (area-averaged to at most 16 cells a side,
-- row-major like raw.maps.data) so that a region can be measured later in SQL; the face-box
-- split is computed from them when the sample is written (faces come with the sample):
-- *_in_box = mean of the map's cells whose centre lies in the generated face box (the cell
-- geometry of map_face_mass_at), *_out_box = mean of the other cells; null when no face
-- was detected or a side has no cell.
create table raw.balance (
    run_id            varchar not null,   -- the run (runs.run_id)
    sample_key        varchar not null,   -- the sample (samples.sample_key)
    site              varchar not null,   -- see raw.sites.site
    step              integer not null check (step >= 0),  -- denoising step index (0-based)
    timestep          double,             -- scheduler timestep of the step
    branch            varchar not null,   -- DCG branch name ('uncond', 'id', 'text', 'text_id')
    n_rows            integer not null check (n_rows > 0),     -- batch rows of the branch averaged
    n_queries         integer not null check (n_queries > 0),  -- queries (native grid cells)
    text_norm         double  not null check (text_norm >= 0), -- mean_q ||Attention(Q,K,V)_q||
    id_norm           double  not null check (id_norm >= 0),   -- mean_q ||lambda A~ V'_q||
    height            integer not null check (height > 0),     -- grid of the norm maps
    width             integer not null check (width > 0),
    text_norm_map     float[],            -- per-cell mean of the per-query text norms (h * w)
    id_norm_map       float[],            -- same for the ID term
    n_box_cells       integer,            -- cells in the generated face box (null: no face)
    text_norm_in_box  double,
    id_norm_in_box    double,
    text_norm_out_box double,
    id_norm_out_box   double,
    schema_version    integer not null,   -- migration version of the writer
    primary key (run_id, sample_key, site, step, branch),
    check (text_norm_map is null or len(text_norm_map) = height * width),
    check (id_norm_map is null or len(id_norm_map) = height * width)
);


-- Word maps (CaptureSpec.words): the text attention softmax(Q K^T / sqrt(d)) of a prompt word
-- (its sub-word tokens summed), stored beside the ID maps in raw.maps and summarised into
-- raw.map_stats / raw.face_mass like them.  Two columns join the map key of the three tables:
--   stream  'id' (the ID tokens' maps, token 0..3 or -1) | 'text' (a prompt word: token -1,
--           stage 'pre'); rows written before this migration have no such column: the views
--           read them as 'id';
--   word    the prompt word ('watercolor', '<start>', '<end>') of a 'text' map; null for 'id'.
-- A primary key cannot hold a nullable column, so the key is a unique index over
-- coalesce(word, '') (the writers' typed tables are empty schemas: recreating them loses nothing).
drop table raw.maps;
create table raw.maps (
    run_id         varchar  not null,      -- the run (runs.run_id)
    sample_key     varchar  not null,      -- the sample (samples.sample_key)
    site           varchar  not null,      -- see raw.sites.site
    step           integer  not null check (step >= 0),  -- denoising step index (0-based)
    timestep       double,                 -- scheduler timestep of the step
    branch         varchar  not null,      -- DCG branch name ('uncond', 'id', 'text_id', ...)
    stream         varchar  not null default 'id'  -- 'id' (ID tokens) | 'text' (a prompt word)
        check (stream in ('id', 'text')),
    word           varchar,                -- the prompt word of a 'text' map; null for 'id'
    token          integer  not null check (token between -1 and 3),  -- ID token 0..3, -1 = all tokens summed
    head           integer  not null check (head >= -1),              -- head index, -1 = heads reduced
    head_reduction varchar  not null check (head_reduction in ('mean', 'max', 'none')),
                                           -- how heads were reduced: 'mean' | 'max' (head = -1), 'none' (head >= 0)
    stage          varchar  not null check (stage in ('pre', 'post')),  -- 'pre' | 'post' (see the probes' capture spec)
    height         integer  not null check (height > 0),  -- stored map height
    width          integer  not null check (width > 0),   -- stored map width
    encoding       varchar  not null check (encoding in ('f16', 'u8', 'none')),  -- how data encodes the values
    scale          double,                 -- u8: value = q * scale (required); null otherwise
    data           usmallint[],            -- see above; null iff encoding = 'none'
    min            double,                 -- minimum value
    mean           double,                 -- mean value
    std            double,                 -- population standard deviation (ddof = 0)
    max            double,                 -- maximum value
    entropy        double,                 -- -sum p ln p (nats) of p = max(map, 0) / sum(max(map, 0)); null if no value > 0 (0003)
    q50            double,                 -- quantiles, linear interpolation (numpy default)
    q90            double,                 -- 90th percentile
    q99            double,                 -- 99th percentile
    hist           integer[],              -- counts on store.encode.HIST_EDGES: [<0, 32 equal bins on [0,1], >1]
    n_values       integer  not null check (n_values > 0),  -- number of values summarised
    schema_version integer  not null,      -- migration version of the writer
    check ((encoding = 'none') = (data is null)),
    check (data is null or len(data) = height * width),
    check ((encoding = 'u8') = (scale is not null)),
    check (encoding <> 'u8' or list_max(data) <= 255),
    check ((head = -1) = (head_reduction <> 'none')),
    check (hist is null or len(hist) = 34),
    check ((stream = 'text') = (word is not null)),
    check (stream = 'id' or (token = -1 and stage = 'pre'))
);
create unique index maps_key on raw.maps
    (run_id, sample_key, site, step, branch, stream, coalesce(word, ''), token, head, stage);

drop table raw.map_stats;
create table raw.map_stats (
    run_id            varchar not null,   -- the run
    sample_key        varchar,            -- the sample (sample directories); null in segments
    site              varchar not null,   -- map key: raw.maps (site, step, branch, token, head,
    step              integer not null,   --   head_reduction, stage, height, width)
    branch            varchar not null,
    stream            varchar not null default 'id' check (stream in ('id', 'text')),  -- as raw.maps
    word              varchar,            -- as raw.maps
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
    check (hist is null or len(hist) = 34),
    check (n_samples <= n_maps),
    check ((stream = 'text') = (word is not null))
);
create unique index map_stats_key on raw.map_stats
    (run_id, site, step, branch, stream, coalesce(word, ''), token, head, head_reduction, stage, height, width);

drop table raw.face_mass;
create table raw.face_mass (
    run_id          varchar not null,
    sample_key      varchar not null,
    site            varchar not null,
    step            integer not null,
    timestep        double,
    branch          varchar not null,
    stream            varchar not null default 'id' check (stream in ('id', 'text')),  -- as raw.maps
    word              varchar,            -- as raw.maps
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
    check ((stream = 'text') = (word is not null))
);
create unique index face_mass_key on raw.face_mass
    (run_id, sample_key, site, step, branch, stream, coalesce(word, ''), token, head, stage);

-- The columns migration 0003 added to the two summary tables, re-added at the end as 0003 did
-- (after schema_version), so that the typed tables keep the column order of the files written
-- by the writers of 0003 and 0004 (definitions: 0003_summary_counts.sql).
alter table raw.map_stats add column n_negative bigint;
alter table raw.map_stats add column n_zero_sum bigint;
alter table raw.map_stats add column n_no_data bigint;
alter table raw.map_stats add column n_no_face bigint;
alter table raw.face_mass add column has_negative boolean;
