"""One device-to-host transfer per denoising step.

The probe reduces each observed (site, stage) on the device into three tensors:
``stats [n, 8] float32`` (:data:`probes.reduce.SUMMARY_FIELDS`), ``hist [n, 34] int32`` and,
when maps are kept, ``data [n, h*w]`` (float16 or uint8 codes). At the end of a step
:func:`pack` concatenates every piece of the step into ONE flat ``uint8`` tensor (byte views,
no conversion; layout: all stats, all hists, all data, so every segment stays aligned to its
element size) and :class:`Transfer` copies it to the host:

- on CUDA into pinned memory with ``non_blocking=True``, recording an event; ``wait()``
  synchronises on that event only (called at the next step or at sample end);
- elsewhere (CPU) the packed tensor already is host memory; ``wait()`` is a no-op.

:func:`unpack` turns the host bytes back into numpy arrays.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from probes.reduce import SUMMARY_FIELDS
from store.encode import HIST_BINS

__all__ = ["pack", "Transfer", "unpack", "NSTATS"]

NSTATS = len(SUMMARY_FIELDS)


def _bytes(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous().reshape(-1).view(torch.uint8)


def pack(stats: list[torch.Tensor], hists: list[torch.Tensor], data: list[torch.Tensor]) -> torch.Tensor:
    """``[sum n_i * 8] f32 + [sum n_i * 34] i32 + flat data`` as one ``uint8`` tensor."""
    parts = [_bytes(torch.cat(stats).float()), _bytes(torch.cat(hists).to(torch.int32))]
    if data:
        parts.append(_bytes(torch.cat([d.reshape(-1) for d in data])))
    return torch.cat(parts)


@dataclass
class Transfer:
    """A queued copy of one packed step buffer to the host."""

    host: torch.Tensor
    event: object | None = None
    source: torch.Tensor | None = None  # kept alive until the copy is done

    @classmethod
    def start(cls, packed: torch.Tensor) -> "Transfer":
        if packed.device.type != "cuda":
            return cls(packed if packed.device.type == "cpu" else packed.cpu())
        host = torch.empty(packed.numel(), dtype=torch.uint8, pin_memory=True)
        host.copy_(packed, non_blocking=True)
        event = torch.cuda.Event()
        event.record(torch.cuda.current_stream(packed.device))
        return cls(host, event, packed)

    @property
    def nbytes(self) -> int:
        return int(self.host.numel())

    def wait(self) -> torch.Tensor:
        if self.event is not None:
            self.event.synchronize()
            self.event, self.source = None, None
        return self.host


def unpack(host: torch.Tensor, n_maps: int, n_data: int, data_dtype: str | None):
    """Host bytes of a step -> ``(stats [n, 8] float32, hist [n, 34] int32, data [n_data])``.

    ``data_dtype`` is 'f16' (returned as the uint16 bit patterns), 'u8' (uint8 codes) or None.
    """
    raw = host.numpy()
    o1 = n_maps * NSTATS * 4
    o2 = o1 + n_maps * HIST_BINS * 4
    stats = raw[:o1].view(np.float32).reshape(n_maps, NSTATS)
    hist = raw[o1:o2].view(np.int32).reshape(n_maps, HIST_BINS)
    if data_dtype is None:
        return stats, hist, None
    if data_dtype == "f16":
        return stats, hist, raw[o2:o2 + 2 * n_data].view(np.uint16)
    return stats, hist, raw[o2:o2 + n_data]
