"""Rows of raw.balance (migration 0005): the probe's BalanceRecords of a sample plus the face-box
split, computed when the sample is written (its generated face is written with it).

The split uses the cell geometry of ``map_face_mass_at`` (store/summaries.py ``FaceGeometry.masks``:
a cell is in the box when its centre is): ``*_in_box`` is the mean of the norm map's cells in the
box, ``*_out_box`` the mean of the others; both null when the sample has no detected generated
face or a side has no cell.  Cells of a map are equal-sized, so the mean of the cells is the mean
of the per-query norms of the queries they cover.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa

from .records import BalanceRecord
from .summaries import FaceGeometry

__all__ = ["balance_rows", "box_split"]


def box_split(norm_map: np.ndarray, geometry: FaceGeometry | None, h: int, w: int) -> tuple:
    """(n_box_cells, mean in box, mean outside) of a h x w norm map; (None, None, None) without a face."""
    if geometry is None or norm_map is None:
        return None, None, None
    box, _ = geometry.masks(h, w)
    v = np.asarray(norm_map, dtype=np.float64).reshape(-1)
    n_box = int(box.sum())
    inside = float(v[box].mean()) if n_box else None
    outside = float(v[~box].mean()) if n_box < v.size else None
    return n_box, inside, outside


def balance_rows(records: Sequence[BalanceRecord], geometry: FaceGeometry | None, base: dict) -> pa.Table:
    """The raw.balance rows of one sample (``base``: run_id, sample_key, schema_version)."""
    rows = []
    for r in records:
        n_box, t_in, t_out = box_split(r.text_norm_map, geometry, r.height, r.width)
        _, i_in, i_out = box_split(r.id_norm_map, geometry, r.height, r.width)
        rows.append({
            **base, "site": r.site, "step": int(r.step), "timestep": None if r.timestep is None else float(r.timestep),
            "branch": r.branch, "n_rows": int(r.n_rows), "n_queries": int(r.n_queries),
            "text_norm": float(r.text_norm), "id_norm": float(r.id_norm),
            "height": int(r.height), "width": int(r.width),
            "text_norm_map": None if r.text_norm_map is None else np.asarray(r.text_norm_map, np.float32).reshape(-1),
            "id_norm_map": None if r.id_norm_map is None else np.asarray(r.id_norm_map, np.float32).reshape(-1),
            "n_box_cells": n_box, "text_norm_in_box": t_in, "id_norm_in_box": i_in,
            "text_norm_out_box": t_out, "id_norm_out_box": i_out,
        })
    table = pa.Table.from_pylist(rows)
    for name in ("text_norm_map", "id_norm_map"):  # float32 lists, as raw.balance declares them
        i = table.schema.get_field_index(name)
        table = table.set_column(i, name, table.column(name).cast(pa.list_(pa.float32())))
    return table
