"""The captured maps of one image, held in memory: selection by part or site, step, ID tokens and
stage, and the summed value histograms (the paper's Fig. 6); the prompt words' text-attention maps
(:class:`WordMapSet`: stream 'text', stage 'pre') beside them.

A shown map is the mean over the chosen sites (each upsampled to the finest grid, as the Samples
page's overlay does) of the sum over the chosen ID tokens, for one step and stage of the
conditioned branch. Histograms are the probe's stored per-map counts (``store.encode.HIST_EDGES``:
[<0] + 32 bins on [0, 1] + [>1]) summed over the chosen maps, as the Attention page's query sums
them.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

#: the default overlay: ID tokens 1-3 summed (token 0 is the first-token "sink" AM2 inverts)
DEFAULT_TOKENS = (1, 2, 3)


def part_of(site: str) -> str:
    from probes.sites import parse_site

    return parse_site(site).part


def upsample(m: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize (exact block repeat for integer ratios)."""
    h, w = m.shape
    H, W = shape
    if (h, w) == (H, W):
        return m
    rows = np.minimum((np.arange(H) + 0.5) * h / H, h - 1).astype(int)
    cols = np.minimum((np.arange(W) + 0.5) * w / W, w - 1).astype(int)
    return m[np.ix_(rows, cols)]


class MapSet:
    """Maps of one sample (``store.records.MapRecord``), decoded on demand: the ID tokens' maps
    (stream 'id'; the word maps of a capture with prompt words are :class:`WordMapSet`'s)."""

    def __init__(self, records: Iterable, branch: str = "text_id"):
        self.records = [r for r in records if r.branch == branch and getattr(r, "stream", "id") == "id"]
        self.branch = branch
        self._index = {(r.site, r.step, r.token, r.stage): r for r in self.records}
        self._decoded: dict = {}

    def __len__(self) -> int:
        return len(self.records)

    @property
    def sites(self) -> list[str]:
        return sorted({r.site for r in self.records})

    @property
    def parts(self) -> list[str]:
        found = {part_of(s) for s in self.sites}
        return [p for p in ("down", "mid", "up") if p in found]

    @property
    def steps(self) -> list[int]:
        return sorted({int(r.step) for r in self.records})

    @property
    def tokens(self) -> list[int]:
        return sorted({int(r.token) for r in self.records})

    @property
    def stages(self) -> list[str]:
        return [s for s in ("pre", "post") if s in {r.stage for r in self.records}]

    def sites_of(self, part: str | None = None, site: str | None = None) -> list[str]:
        """The chosen site, or every site of a part, or every site."""
        if site is not None:
            return [site] if site in self.sites else []
        return [s for s in self.sites if part is None or part_of(s) == part]

    def _decode(self, rec) -> np.ndarray | None:
        from store.encode import decode_map

        key = (rec.site, rec.step, rec.token, rec.stage)
        if key not in self._decoded:
            self._decoded[key] = decode_map(rec.data, rec.encoding, rec.scale, rec.height, rec.width)
        return self._decoded[key]

    def map(self, *, step: int, stage: str, tokens: Sequence[int] = DEFAULT_TOKENS, part: str | None = None,
            site: str | None = None) -> np.ndarray | None:
        """Mean over the chosen sites of the sum over ``tokens`` (None when nothing matches or
        only summaries were kept)."""
        per_site = []
        for s in self.sites_of(part, site):
            recs = [self._index.get((s, int(step), int(t), stage)) for t in tokens]
            if any(r is None for r in recs):
                continue
            decoded = [self._decode(r) for r in recs]
            if any(d is None for d in decoded):
                continue
            per_site.append(np.sum([d.astype(np.float64) for d in decoded], axis=0))
        if not per_site:
            return None
        shape = max((m.shape for m in per_site), key=lambda sh: sh[0] * sh[1])
        return np.mean([upsample(m, shape) for m in per_site], axis=0)

    def histogram(self, *, stage: str, tokens: Sequence[int] | None = None, part: str | None = None,
                  site: str | None = None, steps: Sequence[int] | None = None) -> tuple[np.ndarray, int]:
        """(summed counts over the 34 stored bins, number of maps summed)."""
        from store.encode import HIST_BINS

        chosen = set(self.sites_of(part, site))
        counts = np.zeros(HIST_BINS, dtype=np.int64)
        n = 0
        for r in self.records:
            if r.stage != stage or r.site not in chosen or r.hist is None:
                continue
            if tokens is not None and int(r.token) not in tokens:
                continue
            if steps is not None and int(r.step) not in steps:
                continue
            counts += np.asarray(r.hist, dtype=np.int64)
            n += 1
        return counts, n


class WordMapSet:
    """The prompt words' maps of one sample (stream 'text', token -1, stage 'pre': the text
    attention before any AM): one map per site, step and word, decoded on demand."""

    def __init__(self, records: Iterable, branch: str = "text_id"):
        self.records = [r for r in records if r.branch == branch and getattr(r, "stream", "id") == "text"]
        self.branch = branch
        self._index = {(r.site, int(r.step), r.word): r for r in self.records}
        self._decoded: dict = {}

    def __len__(self) -> int:
        return len(self.records)

    @property
    def words(self) -> list[str]:
        """The captured words in order of first capture (the prompt's order: <start> first)."""
        return list(dict.fromkeys(r.word for r in self.records))

    def map(self, *, step: int, word: str, part: str | None = None, site: str | None = None) -> np.ndarray | None:
        """Mean over the chosen sites (each upsampled to the finest grid) of the word's map; None
        when nothing matches or only summaries were kept."""
        from store.encode import decode_map

        sites = sorted({r.site for r in self.records})
        chosen = [site] if site is not None else [s for s in sites if part is None or part_of(s) == part]
        per_site = []
        for s in chosen:
            rec = self._index.get((s, int(step), word))
            if rec is None:
                continue
            key = (s, int(step), word)
            if key not in self._decoded:
                self._decoded[key] = decode_map(rec.data, rec.encoding, rec.scale, rec.height, rec.width)
            if self._decoded[key] is not None:
                per_site.append(self._decoded[key].astype(np.float64))
        if not per_site:
            return None
        shape = max((m.shape for m in per_site), key=lambda sh: sh[0] * sh[1])
        return np.mean([upsample(m, shape) for m in per_site], axis=0)
