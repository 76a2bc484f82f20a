"""Typed records handed to StoreWriter.  Column meanings: store/sql/migrations/0001_init.sql.

Records of a sample (MapRecord, FaceRecord, MetricRecord, SiteRecord) carry no
run_id / sample_key: the writer fills them from the write_sample call, so they
cannot disagree with it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import socket
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from . import encode

STATUSES = ("running", "completed", "interrupted", "failed")
SITE_RE = re.compile(
    r"(?P<part>down_blocks|mid_block|up_blocks)(?:\.(?P<block>\d+))?\.attentions\.(?P<attention>\d+)"
    r"\.transformer_blocks\.(?P<layer>\d+)\.(?P<attn>attn[12])")


def utcnow() -> dt.datetime:
    """Naive UTC timestamp (the store's TIMESTAMP convention), microsecond precision."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def canonical_json(value: Any) -> str | None:
    """Canonical JSON text (sorted keys, compact); a str is parsed and re-serialised."""
    if value is None:
        return None
    if isinstance(value, str):
        value = json.loads(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def sample_key(identity: str, prompt: str, seed: int, extra: str = "") -> str:
    """Deterministic sample key: sha1 hex of the canonical JSON of the inputs."""
    payload = canonical_json({"identity": str(identity), "prompt": str(prompt), "seed": int(seed),
                              "extra": str(extra)})
    return hashlib.sha1(payload.encode("utf-8")).hexdigest()


@dataclass
class RunRecord:
    run_id: str
    config: Mapping[str, Any] | str          # the full typed config (dict, or JSON text)
    name: str | None = None
    preset: str | None = None
    checkpoint: str | None = None
    ip_scale: float | None = None
    lora_scale: float | None = None
    seed: int | None = None
    capture_spec: Mapping[str, Any] | str | None = None
    package_versions: Mapping[str, str] | str | None = None
    host: str | None = field(default_factory=socket.gethostname)
    notes: str | None = None
    created_at: dt.datetime | None = None    # default: now (UTC)
    # a grid cell's {"base": preset, "grid": id, "coords": {path: value}} (migration 0004); None otherwise
    variation: Mapping[str, Any] | str | None = None

    # fields that define a run: begin_run refuses a second run_id with different values
    IDENTITY_FIELDS = ("name", "preset", "checkpoint", "ip_scale", "lora_scale", "seed",
                       "config_json", "capture_spec_json", "variation_json")

    def row(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "created_at": self.created_at or utcnow(), "name": self.name,
            "preset": self.preset, "checkpoint": self.checkpoint,
            "ip_scale": None if self.ip_scale is None else float(self.ip_scale),
            "lora_scale": None if self.lora_scale is None else float(self.lora_scale),
            "seed": None if self.seed is None else int(self.seed),
            "config_json": canonical_json(self.config),
            "capture_spec_json": canonical_json(self.capture_spec),
            "package_versions_json": canonical_json(self.package_versions),
            "host": self.host, "notes": self.notes, "variation_json": canonical_json(self.variation),
        }


@dataclass
class SampleRecord:
    sample_key: str
    identity: str
    prompt: str
    category: str                      # 'realistic' | 'stylistic'
    seed: int
    status: str = "ok"                 # 'ok' | 'failed'
    error: str | None = None
    image_png: bytes | None = None
    width: int | None = None
    height: int | None = None
    id_image_path: str | None = None
    sample_index: int | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    gen_seconds: float | None = None
    capture_bytes: int | None = None   # default: bytes of the maps' data written with the sample

    def row(self) -> dict[str, Any]:
        return {
            "sample_key": self.sample_key, "sample_index": self.sample_index, "identity": self.identity,
            "id_image_path": self.id_image_path, "prompt": self.prompt, "category": self.category,
            "seed": int(self.seed), "status": self.status, "error": self.error,
            "image_png": None if self.image_png is None else bytes(self.image_png),
            "width": self.width, "height": self.height, "started_at": self.started_at,
            "finished_at": self.finished_at, "gen_seconds": self.gen_seconds,
            "capture_bytes": self.capture_bytes,
        }


@dataclass
class SiteRecord:
    site: str
    part: str
    block: int
    attention: int
    layer: int
    attn: str
    heads: int
    height: int
    width: int

    @classmethod
    def from_key(cls, key: str, heads: int, height: int, width: int) -> "SiteRecord":
        """Parse a diffusers processor key ('...attn2' or '...attn2.processor')."""
        site = key[: -len(".processor")] if key.endswith(".processor") else key
        m = SITE_RE.fullmatch(site)
        if not m:
            raise ValueError(f"not an SDXL attention processor key: {key!r}")
        part = {"down_blocks": "down", "mid_block": "mid", "up_blocks": "up"}[m["part"]]
        return cls(site=site, part=part, block=int(m["block"] or 0), attention=int(m["attention"]),
                   layer=int(m["layer"]), attn=m["attn"], heads=int(heads), height=int(height),
                   width=int(width))

    def row(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class MapRecord:
    """One captured map: encoded data (uint16 array, row-major) plus its summaries.

    Build from a full-precision 2-D map with MapRecord.from_map(...); probes that
    encode and summarise on the GPU fill the fields directly (store.encode is the
    reference they are tested against)."""
    site: str
    step: int
    branch: str
    token: int
    head: int
    head_reduction: str
    stage: str
    height: int
    width: int
    encoding: str
    data: np.ndarray | None
    n_values: int
    scale: float | None = None
    timestep: float | None = None
    min: float | None = None
    mean: float | None = None
    std: float | None = None
    max: float | None = None
    entropy: float | None = None
    q50: float | None = None
    q90: float | None = None
    q99: float | None = None
    hist: np.ndarray | None = None
    stream: str = "id"                     # 'id' (ID tokens) | 'text' (a prompt word; token -1)
    word: str | None = None                # the prompt word of a 'text' map (null for 'id')

    @classmethod
    def from_map(cls, map2d: np.ndarray, *, site: str, step: int, branch: str, token: int = -1,
                 head: int = -1, head_reduction: str = "mean", stage: str = "post",
                 encoding: str = "f16", timestep: float | None = None, stream: str = "id",
                 word: str | None = None) -> "MapRecord":
        m = np.asarray(map2d)
        data, scale = encode.encode_map(m, encoding)
        s = encode.summarise(m)
        return cls(site=site, step=step, branch=branch, token=token, head=head,
                   head_reduction=head_reduction, stage=stage, height=m.shape[0], width=m.shape[1],
                   encoding=encoding, data=data, scale=scale, timestep=timestep, stream=stream, word=word, **s)

    SCALARS = ("site", "step", "timestep", "branch", "token", "head", "head_reduction", "stage",
               "height", "width", "encoding", "scale", "min", "mean", "std", "max", "entropy",
               "q50", "q90", "q99", "n_values", "stream", "word")


@dataclass
class FaceRecord:
    role: str                              # 'reference' | 'generated'
    detected: bool
    backend: str
    det_size: int | None = None
    n_faces: int | None = None
    bbox: tuple[float, float, float, float] | None = None   # x0, y0, x1, y1 in pixels
    kps: np.ndarray | list[float] | None = None             # (5, 2) or (10,)
    score: float | None = None
    area_ratio: float | None = None
    embedding: np.ndarray | list[float] | None = None
    similarity: float | None = None

    def row(self) -> dict[str, Any]:
        x0, y0, x1, y1 = (None,) * 4 if self.bbox is None else (float(v) for v in self.bbox)
        return {
            "role": self.role, "detected": bool(self.detected), "backend": self.backend,
            "det_size": self.det_size, "n_faces": self.n_faces, "x0": x0, "y0": y0, "x1": x1, "y1": y1,
            "kps": None if self.kps is None else np.asarray(self.kps, dtype=np.float64).reshape(-1).tolist(),
            "score": None if self.score is None else float(self.score),
            "area_ratio": None if self.area_ratio is None else float(self.area_ratio),
            "embedding": None if self.embedding is None
            else np.asarray(self.embedding, dtype=np.float32).reshape(-1).tolist(),
            "similarity": None if self.similarity is None else float(self.similarity),
        }


@dataclass
class MetricRecord:
    name: str
    value: float | None
    model: str = ""                        # model id + version; '' when no model is involved

    def row(self) -> dict[str, Any]:
        return {"name": self.name, "value": None if self.value is None else float(self.value),
                "model": self.model}


@dataclass
class BalanceRecord:
    """The two terms of one decoupled block at one (site, step, branch) of a sample (raw.balance,
    migration 0005): mean per-query L2 norms of the text term and of the ID term, and the
    per-query norm maps area-averaged to a small grid (float32, row-major, height x width).
    The face-box split is computed by the writer (store/balance.py)."""
    site: str
    step: int
    branch: str
    text_norm: float
    id_norm: float
    height: int
    width: int
    text_norm_map: np.ndarray | None = None
    id_norm_map: np.ndarray | None = None
    n_rows: int = 1
    n_queries: int = 1
    timestep: float | None = None
