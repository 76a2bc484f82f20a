-- 0001_init: the typed tables of a FastFace Workbench store.
--
-- These tables are the *schema* of the store, not its data.  Every Parquet
-- file under STORE/data and STORE/runs is written by COPYing one of these
-- tables (after inserting the rows of one sample, one run or one event) from an
-- in-memory DuckDB connection that applied all migrations; so every file has
-- exactly these column types and every row passed these constraints when it
-- was written.  The catalog (STORE/catalog.duckdb) applies the same migrations
-- (recorded in main.schema_migrations) and defines the public views in main.
--
-- Conventions:
--   * all tables live in schema `raw`; the public views of the same names live in `main`;
--   * timestamps are TIMESTAMP (no time zone) in UTC;
--   * *_json columns hold JSON text (VARCHAR, canonical: sorted keys, no spaces);
--   * schema_version = the highest migration version the writer had applied when it
--     wrote the row (rows written by older code keep their older number);
--   * identifiers (run_id, sample_key) are path-safe: they name directories.
--   Migrations are append-only: never edit an applied migration, add 0002_*.sql.

create schema if not exists raw;

-- One row per run, written once to STORE/runs/<run_id>/run.parquet.
create table raw.runs (
    run_id                varchar   not null primary key  -- path-safe id, unique per store
        check (regexp_full_match(run_id, '[A-Za-z0-9][A-Za-z0-9._-]{0,127}')),
    created_at            timestamp not null,   -- UTC time begin_run first created the run
    name                  varchar,              -- human label
    preset                varchar,              -- FastFace preset name (e.g. 'fastface-4step')
    checkpoint            varchar,              -- base model checkpoint id / path
    ip_scale              double,               -- IP-Adapter scale
    lora_scale            double,               -- few-step LoRA scale
    seed                  bigint,               -- run-level base seed
    config_json           varchar   not null,   -- the full typed run config as canonical JSON
    capture_spec_json     varchar,              -- what the attention probes capture (canonical JSON)
    package_versions_json varchar,              -- {package: version} of the creating process (canonical JSON)
    host                  varchar,              -- host name of the process that created the run
    notes                 varchar,              -- free text
    schema_version        integer   not null    -- migration version of the writer
);

-- Status changes of a run, one small file per event under STORE/runs/<run_id>/events/.
create table raw.run_events (
    event_id       varchar   not null primary key,  -- uuid4 hex of the event
    run_id         varchar   not null,              -- the run (runs.run_id)
    "at"           timestamp not null,              -- UTC time of the event ("at" is a keyword: quote it)
    status         varchar   not null               -- 'running' | 'completed' | 'interrupted' | 'failed'
        check (status in ('running', 'completed', 'interrupted', 'failed')),
    n_done         integer,                         -- samples done when the event was written (null: unknown)
    n_failed       integer,                         -- of which failed
    n_total        integer,                         -- samples planned
    message        varchar,                         -- free text (error text for 'failed')
    host           varchar,                         -- writer host
    pid            integer,                         -- writer process id
    worker_id      varchar,                         -- StoreWriter(worker_id=...) of the writer
    schema_version integer   not null,              -- migration version of the writer
    check (n_done is null or n_done >= 0),
    check (n_failed is null or n_failed >= 0),
    check (n_total is null or n_total >= 0)
);

-- One row per generated (or failed) sample; STORE/data/run=<id>/sample=<key>/samples.parquet.
create table raw.samples (
    run_id         varchar   not null,      -- the run (runs.run_id)
    sample_key     varchar   not null,      -- deterministic key (store.records.sample_key), unique per run;
                                            -- path-safe [A-Za-z0-9._-] (checked by the writer, not by a
                                            -- CHECK: a regex per insert costs ~4 ms; contract accepted_values)
    sample_index   integer,                 -- position of the sample in the run's plan (ordering only; may be null)
    identity       varchar   not null,      -- identity name / id of the reference person
    id_image_path  varchar,                 -- path of the reference (ID) image
    prompt         varchar   not null,      -- the generation prompt
    category       varchar   not null       -- prompt category: 'realistic' | 'stylistic'
        check (category in ('realistic', 'stylistic')),
    seed           bigint    not null,      -- generation seed of this sample
    status         varchar   not null check (status in ('ok', 'failed')),  -- 'ok' | 'failed'
    error          varchar,                 -- error text; null when ok, required when failed
    image_png      blob,                    -- the generated image as PNG bytes; null when failed
    width          integer,                 -- generated image width in pixels (required when ok)
    height         integer,                 -- generated image height in pixels (required when ok)
    started_at     timestamp,               -- UTC
    finished_at    timestamp,               -- UTC
    gen_seconds    double,                  -- wall time of the generation
    capture_bytes  bigint,                  -- bytes of attention maps captured for this sample
    worker_id      varchar,                 -- StoreWriter(worker_id=...) that committed the sample
    schema_version integer   not null,      -- migration version of the writer
    primary key (run_id, sample_key),
    check ((status = 'ok' and error is null and image_png is not null and width > 0 and height > 0)
        or (status = 'failed' and error is not null)),
    check (gen_seconds is null or gen_seconds >= 0),
    check (capture_bytes is null or capture_bytes >= 0)
);

-- Attention sites (processors) of a run.  Written in sample dirs as needed
-- (each writer writes a site once); the `sites` view keeps one row per (run_id, site).
create table raw.sites (
    run_id         varchar not null,   -- the run (runs.run_id)
    site           varchar not null,   -- diffusers processor key without '.processor'
                                       -- e.g. 'up_blocks.0.attentions.2.transformer_blocks.6.attn2'
    part           varchar not null check (part in ('down', 'mid', 'up')),
    block          integer not null,   -- index in down_blocks / up_blocks (0 for mid_block)
    attention      integer not null,   -- index in <block>.attentions
    layer          integer not null,   -- index in transformer_blocks
    attn           varchar not null check (attn in ('attn1', 'attn2')),  -- self (attn1) or cross (attn2)
    heads          integer not null check (heads > 0),
    height         integer not null check (height > 0),  -- query grid height
    width          integer not null check (width > 0),   -- query grid width
    schema_version integer not null,   -- migration version of the writer
    primary key (run_id, site)
);

-- Attention maps (and/or their summaries) captured by the probes.
-- data layout: row-major (height, width); element k is cell (k // width, k % width).
-- encoding 'f16': data[k] = IEEE-754 binary16 bit pattern of the value (decode: f16_to_float);
-- encoding 'u8' : data[k] = q in 0..255 and value = q * scale (same USMALLINT[] column: Parquet has
--                 no 8- or 16-bit physical type, both are INT32 on disk, so a separate UTINYINT[]
--                 column would save nothing and would double the decoding paths);
-- encoding 'none': only the summaries were kept, data is null.
-- Summaries are over the n_values = height*width values of the full-precision map
-- (store.encode.summarise is the reference implementation).
create table raw.maps (
    run_id         varchar  not null,      -- the run (runs.run_id)
    sample_key     varchar  not null,      -- the sample (samples.sample_key)
    site           varchar  not null,      -- see raw.sites.site
    step           integer  not null check (step >= 0),  -- denoising step index (0-based)
    timestep       double,                 -- scheduler timestep of the step
    branch         varchar  not null,      -- DCG branch name ('uncond', 'id', 'text_id', ...)
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
    entropy        double,                 -- -sum p ln p (nats) of p = map / sum(map); null if any value < 0 or sum = 0
    q50            double,                 -- quantiles, linear interpolation (numpy default)
    q90            double,                 -- 90th percentile
    q99            double,                 -- 99th percentile
    hist           integer[],              -- counts on store.encode.HIST_EDGES: [<0, 32 equal bins on [0,1], >1]
    n_values       integer  not null check (n_values > 0),  -- number of values summarised
    schema_version integer  not null,      -- migration version of the writer
    primary key (run_id, sample_key, site, step, branch, token, head, stage),
    check ((encoding = 'none') = (data is null)),
    check (data is null or len(data) = height * width),
    check ((encoding = 'u8') = (scale is not null)),
    check (encoding <> 'u8' or list_max(data) <= 255),
    check ((head = -1) = (head_reduction <> 'none')),
    check (hist is null or len(hist) = 34)
);

-- Face detection on the reference image and on the generated image.
-- A failed detection is a row with detected = false, never a missing row.
create table raw.faces (
    run_id         varchar not null,   -- the run (runs.run_id)
    sample_key     varchar not null,   -- the sample (samples.sample_key)
    role           varchar not null check (role in ('reference', 'generated')),  -- which image
    detected       boolean not null,   -- a face was found
    backend        varchar not null,   -- detector id + version, e.g. 'insightface-antelopev2'
    det_size       integer,            -- detector input size (null if not applicable)
    n_faces        integer,            -- faces found (the row describes the largest one)
    x0             double,             -- bbox in image pixels (null if not detected): left
    y0             double,             -- (top)
    x1             double,             -- (right)
    y1             double,             -- (bottom)
    kps            double[],           -- 5 keypoints x0,y0,...,x4,y4 in pixels (eyes, nose, mouth corners)
    score          double,             -- detection score
    area_ratio     double,             -- bbox area / image area
    embedding      float[],            -- identity embedding (e.g. 512-d ArcFace)
    similarity     double,             -- cosine similarity to the reference embedding; null for the
                                       -- reference row or when not detected
    schema_version integer not null,   -- migration version of the writer
    primary key (run_id, sample_key, role),
    check (detected or (x0 is null and y0 is null and x1 is null and y1 is null
                        and kps is null and embedding is null and similarity is null)),
    check (not detected or (x0 is not null and y0 is not null and x1 is not null and y1 is not null)),
    check (kps is null or len(kps) = 10),
    check (role = 'generated' or similarity is null)
);

-- Scalar metrics of a sample (written with the sample or later by an evaluator).
create table raw.metrics (
    run_id         varchar   not null,  -- the run (runs.run_id)
    sample_key     varchar   not null,  -- the sample (samples.sample_key)
    name           varchar   not null,  -- metric name, e.g. 'clip_t', 'face_sim'
    value          double,              -- null when undefined for this sample
    model          varchar   not null,  -- model id + version that computed it ('' if none)
    created_at     timestamp not null,  -- UTC; the metrics view keeps the latest per key
    schema_version integer   not null,  -- migration version of the writer
    primary key (run_id, sample_key, name, model)
);

-- Compaction manifest: one row per directory merged into a segment
-- (STORE/data/run=<id>/segment=<segment_id>/manifest.parquet).
create table raw.manifest (
    run_id         varchar   not null,  -- the run (runs.run_id)
    segment_id     varchar   not null,  -- uuid4 hex: the segment=<segment_id> directory
    source_dir     varchar   not null,  -- merged directory name ('sample=<key>' or 'metrics=<id>')
    kind           varchar   not null check (kind in ('sample', 'metrics')),  -- 'sample' | 'metrics'
    sample_key     varchar,             -- for kind = 'sample'
    compacted_at   timestamp not null,  -- UTC time of the compaction
    schema_version integer   not null,  -- migration version of the compactor
    primary key (run_id, source_dir),
    check ((kind = 'sample') = (sample_key is not null))
);
