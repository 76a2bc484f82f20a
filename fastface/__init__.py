"""FastFace on diffusers: decoupled CFG (DCG) and attention manipulation (AM) for
IP-Adapter FaceID-Plus-v2 on few-step distilled SDXL models (arXiv 2505.21144).

In a notebook (the offline tiny world: random weights, the dlib face backend, a few seconds on a CPU)::

    import fastface
    ff = fastface.load_pipeline("hyper", tiny=True, face_backend="dlib", device="cpu")
    identity = ff.encode_identity(fastface.sample_photos()["astronaut"])
    with fastface.capture(ff, fastface.named_spec("head_mean")) as probe:
        result, maps = probe.generate("s0", "a photo of a person", identity, fastface.load_preset("ff-am2"), seed=0)

``result.image`` is the image and ``maps`` its attention maps (``store.records.MapRecord``); a
store written by ``fastface capture`` or ``fastface demo`` reads back as DataFrames with
``fastface.read_store("runs/demo-store")`` (``{"runs": ..., "samples": ..., "faces": ...,
"metrics": ...}``).

The public API, and where each name lives:

- :func:`load_pipeline` (:mod:`fastface.models.pipeline`): a FastFace pipeline on a distilled
  SDXL checkpoint, or on an offline world (``tiny=True``).
- :class:`FastFaceConfig`, :func:`load_preset`, :func:`preset_names` (:mod:`fastface.method.config`).
- :func:`capture`, :func:`named_spec` (:mod:`probes.capture`, :mod:`probes.spec`): the attention probe.
- :func:`read_store` (:func:`store.queries.read_tables`): a store's views as DataFrames.
- :func:`sample_photos` (:mod:`fastface.faces.photos`): offline single-face photos.

The package's rooms: :mod:`fastface.method` (the paper: configs, DCG, AM, the attention
processor), :mod:`fastface.models` (checkpoints, pipeline assembly, weights, offline worlds),
:mod:`fastface.faces` (face analysis), :mod:`fastface.sweeps` (datasets, sweeps, Ray),
:mod:`fastface.evaluation` (metrics, import, report) and :mod:`fastface.cli` (the ``fastface``
command).  Light imports only: ``import fastface`` loads the configurations (torch, no
diffusers); the other names import their modules when first used.
"""
from fastface.method.config import FastFaceConfig, load_preset, preset_names

__version__ = "0.1.0"
__all__ = ["FastFaceConfig", "capture", "load_pipeline", "load_preset", "named_spec", "preset_names", "read_store",
           "sample_photos", "__version__"]


def __getattr__(name: str):
    """The names that import heavier modules (diffusers, DuckDB), loaded when first used."""
    if name == "load_pipeline":
        from fastface.models.pipeline import load_pipeline

        return load_pipeline
    if name == "capture":
        from probes.capture import capture

        return capture
    if name == "named_spec":
        from probes.spec import named_spec

        return named_spec
    if name == "read_store":
        from store.queries import read_tables

        return read_tables
    if name == "sample_photos":
        from fastface.faces.photos import sample_photos

        return sample_photos
    raise AttributeError(f"module 'fastface' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
