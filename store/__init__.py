"""FastFace Workbench store: per-sample Parquet commits + a DuckDB catalog of views.

Writers (any number of processes):   StoreWriter(path).write_sample(...)
Readers (any number of processes):   connect_read_only(path) -> DuckDB connection with the views
Maintenance:                         store.compact.compact(path, run_id)

See store/README.md (design, guarantees) and store/VIEWS.md (views and columns).
"""

from . import compact as compact  # the module: store.compact.compact(path, run_id)
from .db import Store, connect_read_only, open_store
from .encode import HIST_BINS, HIST_EDGES, decode_map, encode_map, summarise
from .layout import StoreError
from .queries import list_queries, run_contracts, run_query
from .records import (FaceRecord, MapRecord, MetricRecord, RunRecord, SampleRecord, SiteRecord,
                      sample_key)
from .schema import MigrationError
from .writer import RunConfigMismatch, StoreWriter, done_sample_keys

__all__ = [
    "FaceRecord", "HIST_BINS", "HIST_EDGES", "MapRecord", "MetricRecord",
    "MigrationError", "RunConfigMismatch", "RunRecord", "SampleRecord", "SiteRecord", "Store",
    "StoreError", "StoreWriter", "compact", "connect_read_only", "decode_map", "done_sample_keys",
    "encode_map", "list_queries", "open_store", "run_contracts", "run_query", "sample_key", "summarise",
]
