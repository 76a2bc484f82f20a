"""Per-map summary rows written with the maps: ``map_stats`` and ``face_mass`` (migration 0002).

The workbench must not scan every map (or decode any) to draw a page, so every commit also
writes, per map, the additive partial sums of its summaries (``map_stats``: n, sums and counts of
mean / std / max / q99 / entropy / peak ratio, the histogram, and the face-mass sums) and, for
ok samples whose generated face was detected, ``map_face_mass_at(0.5)`` computed here in numpy
(``face_mass``).  Compaction sums ``map_stats`` over a segment's samples (sql/summaries/
map_stats_merge.sql, registered in store/segment.py) and concatenates ``face_mass``.

Definitions are those of the SQL they replace: ``sql/macros/map_face_mass_at.sql`` (values
decoded like ``map_values``: float32; sums in float64; the mass of a map with negative values
is that of its positive part max(v, 0), migration 0003) and the averages of the old
``hist_sum`` / ``step_stats`` / ``face_mass`` workbench queries.  ``tests/integration/
test_store_summaries.py`` compares both on a store.

What an average leaves out is counted per map (0003): ``n_negative`` (maps with a value < 0:
counted, on their positive part), ``n_zero_sum`` (no value > 0: entropy and face mass
undefined), ``n_no_data`` (no stored values: no face mass), ``n_no_face`` (values, but the
sample has no detected generated face).  ``positive_entropy`` recomputes the entropy of stored
maps (``fastface store backfill`` for maps written when a negative value made it null).
"""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np
import pyarrow as pa

#: the threshold of the precomputed face_mass rows (the map_face_mass view)
FACE_MASS_THR = 0.5
KEY = ("site", "step", "branch", "token", "head", "head_reduction", "stage", "height", "width", "stream", "word")
#: key columns added by migration 0005 (word maps) and their value in maps written before it
LATER_KEY = {"stream": "id", "word": None}
#: maps columns read to summarise (maps.parquet / the writer's Arrow table)
MAP_COLUMNS = ("run_id", "sample_key", *KEY, "timestep", "encoding", "scale", "data", "min", "mean", "std",
               "max", "q99", "entropy", "hist")
#: a map_stats.parquet with this column holds the current definitions (migration 0003)
CURRENT_MARKER = "n_zero_sum"


def typed_schema(con, table: str) -> pa.Schema:
    """The Arrow schema of the typed table raw.<table> of a typed_memory_connection."""
    from .schema import RAW_TABLES

    return con.table(RAW_TABLES[table]).limit(0).to_arrow_table().schema


@dataclass(frozen=True)
class FaceGeometry:
    """The generated face of an ok sample, in image pixels (map_face_mass_at.sql)."""
    image_width: int
    image_height: int
    x0: float
    y0: float
    x1: float
    y1: float
    ex: float | None = None   # landmark ellipse centre and semi-axes (None: no ellipse)
    ey: float | None = None
    ea: float | None = None
    eb: float | None = None

    @classmethod
    def of(cls, face: dict, width: int, height: int) -> "FaceGeometry":
        kps = face.get("kps")
        ex = ey = ea = eb = None
        if kps is not None and len(kps) == 10:
            kx, ky = np.asarray(kps[0::2], float), np.asarray(kps[1::2], float)
            ex, ey = (kx.min() + kx.max()) / 2, (ky.min() + ky.max()) / 2
            ea, eb = 1.0 * (kx.max() - kx.min()) or None, 1.25 * (ky.max() - ky.min()) or None
        return cls(int(width), int(height), float(face["x0"]), float(face["y0"]), float(face["x1"]),
                   float(face["y1"]), ex, ey, ea, eb)

    def masks(self, h: int, w: int) -> tuple[np.ndarray, np.ndarray | None]:
        """(box cells, ellipse cells or None) of a h x w map, row-major."""
        k = np.arange(h * w)
        cx = ((k % w) + 0.5) * self.image_width / w
        cy = ((k // w) + 0.5) * self.image_height / h
        box = (cx >= self.x0) & (cx <= self.x1) & (cy >= self.y0) & (cy <= self.y1)
        if self.ea is None or self.eb is None:
            return box, None
        return box, (((cx - self.ex) / self.ea) ** 2 + ((cy - self.ey) / self.eb) ** 2) <= 1


def generated_faces(samples: list[dict], faces: list[dict]) -> dict[tuple[str, str], FaceGeometry]:
    """(run_id, sample_key) -> geometry of the detected generated face of each ok sample."""
    size = {(s["run_id"], s["sample_key"]): (s["width"], s["height"]) for s in samples if s["status"] == "ok"}
    out = {}
    for f in faces:
        k = (f["run_id"], f["sample_key"])
        if f["role"] == "generated" and f["detected"] and k in size:
            out[k] = FaceGeometry.of(f, *size[k])
    return out


def _decoded(data: pa.ListArray, encoding: np.ndarray, scale: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """float32 values (len(rows), n) of the given rows (all with data of n values), like map_values."""
    offsets = data.offsets.to_numpy()
    flat = data.values.to_numpy(zero_copy_only=False).astype(np.uint16, copy=False)
    codes = flat[offsets[rows][:, None] + np.arange(n)]
    out = codes.view(np.float16).astype(np.float32)
    u8 = encoding[rows] == "u8"
    if u8.any():
        out[u8] = (codes[u8].astype(np.float64) * scale[rows][u8][:, None]).astype(np.float32)
    return out


def _face_mass(t: dict, data: pa.ListArray, geometry: dict, thr: float) -> dict[str, np.ndarray]:
    """Columns of map_face_mass_at(thr), one entry per map (NaN / -1 where the map has no row)."""
    n = len(t["site"])
    cols = {c: np.full(n, np.nan) for c in ("mass_in_box", "mass_in_ellipse", "iou_box", "iou_ellipse",
                                           "x0", "y0", "x1", "y1")}
    cols.update({c: np.full(n, -1, dtype=np.int64) for c in ("n_box_cells", "n_ellipse_cells", "n_thr_cells",
                                                             "image_width", "image_height")})
    cols["has_row"] = np.zeros(n, dtype=bool)
    cols["has_negative"] = np.zeros(n, dtype=bool)
    if not geometry:
        return cols
    valid = ~np.asarray(data.is_null().to_numpy(zero_copy_only=False))
    groups: dict = {}
    for i in np.flatnonzero(valid):
        g = geometry.get((t["run_id"][i], t["sample_key"][i]))
        if g is not None:
            groups.setdefault((g, int(t["height"][i]), int(t["width"][i])), []).append(i)
    for (g, h, w), rows in groups.items():
        rows = np.asarray(rows)
        v = _decoded(data, t["encoding"], t["scale"], rows, h * w)
        pos = np.maximum(v.astype(np.float64), 0.0)  # the positive part (AdaIN 'post' maps can be < 0)
        vmin, vmax, vsum = v.min(1), v.max(1), pos.sum(1)
        box, ell = g.masks(h, w)
        hot = (vmax > 0)[:, None] & (v >= np.float32(thr) * vmax[:, None])
        n_thr, n_box = hot.sum(1), int(box.sum())
        inter = (hot & box).sum(1)
        positive = vsum > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            cols["mass_in_box"][rows] = np.where(positive, (pos @ box) / vsum, np.nan)
            union = n_thr + n_box - inter
            cols["iou_box"][rows] = np.where((vmax > 0) & (union > 0), inter / union, np.nan)
            if ell is not None:
                n_ell, inter_e = int(ell.sum()), (hot & ell).sum(1)
                cols["n_ellipse_cells"][rows] = n_ell
                cols["mass_in_ellipse"][rows] = np.where(positive, (pos @ ell) / vsum, np.nan)
                union_e = n_thr + n_ell - inter_e
                cols["iou_ellipse"][rows] = np.where((vmax > 0) & (union_e > 0), inter_e / union_e, np.nan)
        cols["n_box_cells"][rows], cols["n_thr_cells"][rows] = n_box, n_thr
        for c in ("x0", "y0", "x1", "y1", "image_width", "image_height"):
            cols[c][rows] = getattr(g, c)
        cols["has_row"][rows] = True
        cols["has_negative"][rows] = vmin < 0
    return cols


def positive_entropy(maps: pa.Table) -> np.ndarray:
    """Entropy (nats) of the positive part of each map's stored values (store.encode.entropy:
    p = max(v, 0) / sum(max(v, 0))), NaN for a map without values or with no value > 0.
    ``maps``: columns encoding, scale, data, height, width."""
    data = maps.column("data").combine_chunks()
    enc = maps.column("encoding").to_numpy(zero_copy_only=False)
    scale = np.asarray(pd_float(maps.column("scale").to_numpy(zero_copy_only=False)))
    h, w = (maps.column(c).to_numpy(zero_copy_only=False).astype(np.int64) for c in ("height", "width"))
    out = np.full(maps.num_rows, np.nan)
    valid = np.flatnonzero(~np.asarray(data.is_null().to_numpy(zero_copy_only=False)))
    for n in np.unique(h[valid] * w[valid]):
        rows = valid[h[valid] * w[valid] == n]
        pos = np.maximum(_decoded(data, enc, scale, rows, int(n)).astype(np.float64), 0.0)
        total = pos.sum(1)
        with np.errstate(divide="ignore", invalid="ignore"):
            p = pos / total[:, None]
            ent = -np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0).sum(1)
        out[rows] = np.where(total > 0, ent, np.nan)
    return out


def _null(values: np.ndarray, missing: np.ndarray, type_) -> pa.Array:
    return pa.array(values, type=type_, mask=missing)


def summarise_maps(maps: pa.Table, geometry: dict, schema_version: int,
                   thr: float = FACE_MASS_THR) -> tuple[pa.Table, pa.Table]:
    """(map_stats rows, face_mass rows) of a table of maps (columns MAP_COLUMNS), one map_stats row
    per map and one face_mass row per map with data of a sample in ``geometry``."""
    t = {c: maps.column(c).to_numpy(zero_copy_only=False) if c in maps.column_names
         else np.full(maps.num_rows, LATER_KEY[c], dtype=object) for c in MAP_COLUMNS if c not in ("data", "hist")}
    t["stream"] = np.array([LATER_KEY["stream"] if v is None else v for v in t["stream"]], dtype=object)
    data = maps.column("data").combine_chunks()
    hist = maps.column("hist").combine_chunks()
    n = maps.num_rows
    fm = _face_mass(t, data, geometry, thr)
    f64 = {c: np.asarray(pd_float(t[c])) for c in ("timestep", "min", "mean", "std", "max", "q99", "entropy")}
    has_data = ~np.asarray(data.is_null().to_numpy(zero_copy_only=False))
    stats = {"run_id": t["run_id"], "sample_key": t["sample_key"], **{k: t[k] for k in KEY},
             "n_maps": np.ones(n, np.int64), "n_samples": np.ones(n, np.int64),
             "n_data": (t["encoding"] != "none").astype(np.int64),
             "n_hist": (~np.asarray(hist.is_null().to_numpy(zero_copy_only=False))).astype(np.int64)}
    for c in ("timestep", "mean", "std", "max", "q99", "entropy"):
        stats[f"sum_{c}"] = _null(np.nan_to_num(f64[c]), np.isnan(f64[c]), pa.float64())
        stats[f"n_{c}"] = (~np.isnan(f64[c])).astype(np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(f64["mean"] != 0, f64["max"] / f64["mean"], np.nan)
    stats["sum_peak_ratio"] = _null(np.nan_to_num(ratio), np.isnan(ratio), pa.float64())
    stats["n_peak_ratio"] = (~np.isnan(ratio)).astype(np.int64)
    stats["hist"] = hist.cast(pa.list_(pa.int64()))
    stats["n_face_maps"] = fm["has_row"].astype(np.int64)
    stats["n_negative"] = (f64["min"] < 0).astype(np.int64)
    stats["n_zero_sum"] = (f64["max"] <= 0).astype(np.int64)  # no value > 0
    stats["n_no_data"] = (~has_data).astype(np.int64)
    stats["n_no_face"] = (has_data & ~fm["has_row"]).astype(np.int64)
    for c in ("mass_in_box", "mass_in_ellipse", "iou_box", "iou_ellipse"):
        stats[f"sum_{c}"] = _null(np.nan_to_num(fm[c]), np.isnan(fm[c]), pa.float64())
        stats[f"n_{c}"] = (~np.isnan(fm[c])).astype(np.int64)
    stats["schema_version"] = np.full(n, schema_version, np.int32)
    rows = np.flatnonzero(fm["has_row"])
    face = {c: pa.array(t[c][rows], pa.string()) if t[c].dtype == object else t[c][rows]
            for c in ("run_id", "sample_key", "site", "step", "branch", "token", "head", "head_reduction", "stage",
                      "stream", "word")}
    face.update({"map_height": t["height"][rows], "map_width": t["width"][rows]})
    for c in ("image_width", "image_height", "x0", "y0", "x1", "y1", "n_box_cells", "n_ellipse_cells",
              "n_thr_cells", "mass_in_box", "mass_in_ellipse", "iou_box", "iou_ellipse"):
        v = fm[c][rows]
        missing = (v == -1) if v.dtype.kind == "i" else np.isnan(v)
        face[c] = _null(np.where(missing, 0, v), missing, pa.int64() if v.dtype.kind == "i" else pa.float64())
    face["n_cells"] = (t["height"][rows].astype(np.int64) * t["width"][rows])
    face["iou_threshold"] = np.full(len(rows), float(thr))
    face["schema_version"] = np.full(len(rows), schema_version, np.int32)
    face["timestep"] = pa.array(f64["timestep"][rows], mask=np.isnan(f64["timestep"][rows]))
    face["has_negative"] = fm["has_negative"][rows]
    return pa.table(stats), pa.table(face)


def pd_float(values) -> np.ndarray:
    """float64 array with NaN for None."""
    a = np.asarray(values, dtype=object) if getattr(values, "dtype", None) == object else np.asarray(values)
    if a.dtype == object:
        return np.array([np.nan if v is None else float(v) for v in a], dtype=np.float64)
    return a.astype(np.float64)
