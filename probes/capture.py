"""Capture decoupled attention maps during FastFace generation.

Usage::

    from probes import capture, named_spec

    with capture(pipe, named_spec("head_mean"), sink=my_sink) as probe:
        for key, prompt in samples:
            result = pipe.generate(prompt, identity, config, seed=0,
                                   observers=[probe], full_batch=probe.spec.full_batch)
            records = probe.finish_sample(key)        # -> list[store.records.MapRecord]; also sink(records)
        # or, equivalently: result, records = probe.generate(key, prompt, identity, config, seed=0)

``generate()`` installs its ``observers`` argument as ``pipe.context.observers`` (and clears it at
the end), so the probe must be passed there; the context manager additionally appends the
probe to ``pipe.context.observers`` for the duration (so a hand-written loop that calls the UNet
directly is observed too) and, on exit, in a ``finally`` that also runs when generation raises:

1. synchronises any transfer still in flight and discards an unfinished sample's buffers;
2. closes the probe (``wants`` is False from then on, so a leaked reference observes nothing);
3. puts ``pipe.context.observers`` back to the list it held before entry (without the probe);
4. verifies that the UNet's attention processors are the very objects they were at entry.

Per observed (site, stage) the probe selects the spec's branch rows by name from
``ctx.layout``, its tokens and heads and area-downsamples on the device; at the end of each
denoising step it summarises and quantises the step's maps, one batched call per map size
(:mod:`probes.reduce`), and queues ONE packed device-to-host copy
(:mod:`probes.transfer`), synchronised at the next step or at :meth:`Probe.finish_sample`.
Nothing but the reduced maps of the current step stays on the device.

The balance (``spec.balance``, on by default): at every probed site and step, for every branch
in the batch, the mean over queries of the per-query L2 norm (over channels) of the block's two
terms, the text term ``Attention(Q, K, V)`` and the ID term ``lambda * A~ V'`` (the processor's
``observe_balance``), averaged over the branch's batch rows, and the per-query norms
area-averaged to at most :data:`BALANCE_SIDE` cells a side.  Also reduced on the device, one
extra small host copy per step; :meth:`Probe.pop_balance` hands a finished sample's
:class:`store.records.BalanceRecord` rows to ``StoreWriter.write_sample(balance=...)``.
"""
from __future__ import annotations

import warnings
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from probes import reduce as R
from probes.sites import Site, select_sites, sites_of
from probes.spec import CaptureSpec
from probes.transfer import Transfer, pack, unpack

__all__ = ["Probe", "capture"]

_HEAD_REDUCTION = {"mean": "mean", "max": "max", "each": "none"}
#: largest side of the stored per-query norm maps of the balance
BALANCE_SIDE = 16


@dataclass
class _Entry:
    """One observe() call's output: maps of (present branches) x (heads) x (tokens), in that order."""

    site: str
    step: int
    timestep: float
    stage: str
    branches: tuple[str, ...]
    heads: int  # stored heads per branch (1 when reduced)
    height: int
    width: int
    words: tuple[str, ...] | None = None  # the text stream's words (None: the ID stream's tokens)

    @property
    def n_maps(self) -> int:
        return len(self.branches) * self.heads


@dataclass
class _Step:
    entries: list[_Entry]
    transfer: Transfer | None
    n_maps: int
    n_data: int
    balance: list | None = None  # [(_BalanceEntry, ...)] of the step
    balance_transfer: Transfer | None = None

    def wait(self) -> None:
        for t in (self.transfer, self.balance_transfer):
            if t is not None:
                t.wait()


@dataclass
class _BalanceEntry:
    """One observe_balance() call: per present branch, 2 means then 2 norm maps (text, id)."""

    site: str
    step: int
    timestep: float
    branches: tuple[str, ...]
    n_rows: tuple[int, ...]
    queries: int
    height: int
    width: int

    @property
    def n_values(self) -> int:
        return len(self.branches) * 2 * (1 + self.height * self.width)


class Probe:
    """An :class:`fastface.method.processor.AttentionObserver` that captures maps as a spec says.

    Shapes: observed maps are ``[batch, heads, queries, tokens]``; the stored maps of one
    (site, step, branch, token, head, stage) are ``[height, width]`` query grids.
    """

    def __init__(self, pipe, spec: CaptureSpec, sink: Callable[[list], object] | None = None):
        if not isinstance(spec, CaptureSpec):
            raise TypeError(f"spec must be a CaptureSpec, got {type(spec).__name__}")
        self.pipe = pipe
        self.spec = spec
        self.sink = sink
        all_sites: list[Site] = sites_of(pipe.pipe.unet)
        self.sites: dict[str, Site] = {s.key: s for s in select_sites(all_sites, spec.sites)}
        self._steps_wanted = None if spec.steps is None else frozenset(spec.steps)
        self._tokens = spec.token_list
        self._encoding = spec.encoding
        self.closed = False
        self.skipped: Counter = Counter()  # branch name -> (site, step) pairs where it was absent
        self.bytes_captured: dict[str, int] = {}  # sample key -> bytes moved to the host
        self.last_bytes: int | None = None  # bytes_captured of the last finished sample
        self.maps_captured: dict[str, int] = {}
        self.discarded = 0  # unfinished samples dropped (generation raised, or never finished)
        self.clamped: dict[str, int] = {}  # sample key -> 'u8' maps with negative values clamped to 0
        self._balance: dict[str, list] = {}  # sample key -> BalanceRecords not yet popped
        self._reset()

    # --- sample state ----------------------------------------------------------------------
    def _reset(self) -> None:
        self._entries: list[_Entry] = []
        self._maps: list[torch.Tensor] = []  # the current step's reduced maps, one tensor per entry
        self._bal_entries: list[_BalanceEntry] = []
        self._bal_values: list[torch.Tensor] = []  # per entry: flat float32 (means, then maps)
        self._word_cache = None
        self._step: int | None = None
        self._done: list[_Step] = []
        self._seen: set[tuple[str, int, str]] = set()

    @property
    def has_pending(self) -> bool:
        """Whether data of an unfinished sample is held."""
        return bool(self._entries or self._bal_entries or self._done)

    # --- observer protocol -------------------------------------------------------------------
    def _site_step(self, site: str, ctx) -> bool:
        if self.closed or site not in self.sites:
            return False
        return self._steps_wanted is None or ctx.step in self._steps_wanted

    def wants(self, site: str, ctx) -> bool:
        if not self._site_step(site, ctx):
            return False
        names = ctx.layout.names
        for b in self.spec.branches:
            if b not in names:
                self.skipped[b] += 1
        return any(b in names for b in self.spec.branches)

    def wants_text(self, site: str, ctx) -> bool:
        if self.spec.words is None or not self._site_step(site, ctx):
            return False
        return any(b.text and b.name in self.spec.branches for b in ctx.layout.branches)

    def _words(self, prompt: str):
        """(words, positions) of the spec's selection in ``prompt`` (cached per prompt)."""
        from probes.words import prompt_words, select_words

        if self._word_cache is None or self._word_cache[0] != prompt:
            sd = self.pipe.pipe
            found = prompt_words(sd.tokenizer, prompt, getattr(sd, "tokenizer_2", None))
            self._word_cache = (prompt, select_words(self.spec.words, found))
        return self._word_cache[1]

    def observe_text(self, site: str, ctx, probs: torch.Tensor) -> None:
        """Word maps from the text attention ``[batch, heads, queries, 77]`` of the branches with
        the text prompt: each selected word's positions summed (heads reduced as for ID maps)."""
        if self.closed or self.spec.words is None or site not in self.sites:
            return
        words, positions = self._words(ctx.prompt)
        wanted = tuple(b.name for b in ctx.layout.branches if b.text and b.name in self.spec.branches)
        rows, present, _ = R.select_branch_rows(probs, ctx.layout, wanted)
        if not present:
            return
        self._begin(site, ctx, "text")
        with torch.no_grad():
            select = torch.zeros(probs.shape[-1], len(words), dtype=torch.float32, device=probs.device)
            for j, pos in enumerate(positions):
                select[list(pos), j] = 1.0
            if self.spec.heads == "mean":  # linear: heads first, then the word sums
                x = R.reduce_heads(rows, "mean") @ select
            else:
                x = R.reduce_heads(rows.float() @ select, self.spec.heads)
            grid = self._grid(self.sites[site], ctx, probs.shape[2])
            maps = R.downsample(R.as_maps(x, grid), R.target_size(*grid, self.spec.resolution))
            self._maps.append(maps)
        self._entries.append(_Entry(site, ctx.step, float(ctx.timestep), "pre", tuple(present), x.shape[1],
                                    maps.shape[1], maps.shape[2], tuple(words)))

    def wants_balance(self, site: str, ctx) -> bool:
        return self.spec.balance and self._site_step(site, ctx)

    def _begin(self, site: str, ctx, stage: str) -> None:
        """Refuse a second capture of (site, step, stage) in one sample; close the previous step."""
        key = (site, ctx.step, stage)
        if key in self._seen:
            raise RuntimeError(
                f"probe: {site} step {ctx.step} {stage!r} was already captured in this sample; call "
                "probe.finish_sample(key) after each generation (or probe.discard_sample() after a failed one)")
        self._seen.add(key)
        if self._step is not None and ctx.step != self._step:
            self._end_step()
        self._step = ctx.step

    def observe_balance(self, site: str, ctx, text_term: torch.Tensor, id_term: torch.Tensor) -> None:
        """Norms of the block's two terms ([batch, queries, channels] each), per present branch."""
        if self.closed or site not in self.sites:
            return
        self._begin(site, ctx, "balance")
        names = ctx.layout.names
        with torch.no_grad():
            norms = torch.stack([torch.linalg.vector_norm(text_term.float(), dim=-1),
                                 torch.linalg.vector_norm(id_term.float(), dim=-1)], dim=1)  # [B, 2, Q]
            per_branch = torch.stack([norms[ctx.layout.rows_of(n)].mean(dim=0) for n in names])  # [nb, 2, Q]
            q = per_branch.shape[-1]
            grid = self._grid(self.sites[site], ctx, q)
            maps = R.downsample(per_branch.reshape(-1, *grid), R.target_size(*grid, BALANCE_SIDE))
            flat = torch.cat([per_branch.mean(dim=-1).reshape(-1), maps.reshape(-1)])
        self._bal_values.append(flat)
        self._bal_entries.append(_BalanceEntry(
            site, ctx.step, float(ctx.timestep), tuple(names),
            tuple(ctx.layout.rows_of(n).stop - ctx.layout.rows_of(n).start for n in names), q,
            maps.shape[1], maps.shape[2]))

    def observe(self, site: str, ctx, stage: str, attn: torch.Tensor) -> None:
        if self.closed or stage not in self.spec.stages or site not in self.sites:
            return
        self._begin(site, ctx, stage)
        rows, present, _ = R.select_branch_rows(attn, ctx.layout, self.spec.branches)
        if not present:
            return
        with torch.no_grad():
            if self.spec.heads == "mean":  # linear: reduce heads first (smaller), then tokens
                x = R.select_tokens(R.reduce_heads(rows, "mean"), self._tokens)
            else:  # token sums per head first, then the head max
                x = R.reduce_heads(R.select_tokens(rows, self._tokens), self.spec.heads)
            grid = self._grid(self.sites[site], ctx, attn.shape[2])
            maps = R.as_maps(x, grid)  # [branches * heads * tokens, h, w] float32
            maps = R.downsample(maps, R.target_size(*grid, self.spec.resolution))
            self._maps.append(maps)  # summarised with the step's other maps of this size (_end_step)
        self._entries.append(_Entry(site, ctx.step, float(ctx.timestep), stage, tuple(present), x.shape[1],
                                    maps.shape[1], maps.shape[2]))

    @staticmethod
    def _grid(site: Site, ctx, queries: int) -> tuple[int, int]:
        grid = site.resolution(ctx.latent_hw) if min(ctx.latent_hw) > 0 else ctx.grid(queries)
        if grid[0] * grid[1] != queries:
            grid = ctx.grid(queries)
            if grid[0] * grid[1] != queries:
                raise ValueError(f"{site.key}: cannot place {queries} queries on a grid for latent {ctx.latent_hw}")
        return grid

    def _end_step(self) -> None:
        """Pack the current step into one buffer and queue its host copy (waiting for the
        previous step's copy first, so at most one is in flight)."""
        if not self._entries and not self._bal_entries:
            return
        if self._done:
            self._done[-1].wait()
        transfer, n_maps, n_data = None, 0, 0
        if self._entries:
            stats, hists, data = summarise_step(self._maps, self._encoding)
            n_maps = sum(e.n_maps * (len(self._tokens) if e.words is None else len(e.words)) for e in self._entries)
            n_data = sum(int(d.numel()) for d in data)
            transfer = Transfer.start(pack(stats, hists, data))
        bal = None
        if self._bal_entries:
            bal = Transfer.start(torch.cat(self._bal_values).float().contiguous().view(torch.uint8))
        self._done.append(_Step(self._entries, transfer, n_maps, n_data, self._bal_entries, bal))
        self._entries, self._maps, self._bal_entries, self._bal_values = [], [], [], []

    # --- sample end ----------------------------------------------------------------------------
    def finish_sample(self, sample_key: str) -> list:
        """Collect the sample's maps as :class:`store.records.MapRecord` (synchronising pending
        copies), hand them to ``sink`` and record ``bytes_captured[sample_key]``."""
        from store.records import MapRecord

        self._end_step()
        records, nbytes = [], 0
        balance = []
        for step in self._done:
            if step.transfer is not None:
                host = step.transfer.wait()
                nbytes += step.transfer.nbytes
                stats, hist, data = unpack(host, step.n_maps, step.n_data,
                                           None if self._encoding == "none" else self._encoding)
                records.extend(self._records(MapRecord, step.entries, stats, hist, data))
            if step.balance_transfer is not None:
                balance.extend(_balance_records(step.balance, step.balance_transfer.wait().numpy().view(np.float32)))
        self._reset()
        self._balance[sample_key] = balance
        self.bytes_captured[sample_key] = self.last_bytes = nbytes
        self.maps_captured[sample_key] = len(records)
        if self._encoding == "u8":
            self.clamped[sample_key] = n = sum(1 for r in records if r.min < 0)
            if n:
                warnings.warn(f"probe: {n} map(s) of sample {sample_key!r} have negative values (AdaIN 'post' maps); "
                              "their 'u8' data clamps them to 0 (summaries are exact); use dtype='float16' to keep "
                              "them", RuntimeWarning, stacklevel=2)
        if self.sink is not None:
            self.sink(records)
        return records

    def _records(self, MapRecord, entries, stats, hist, data) -> Iterator:
        i, offset = 0, 0
        reduction = _HEAD_REDUCTION[self.spec.heads]
        for e in entries:
            n = e.height * e.width
            labels = [(t, "id", None) for t in self._tokens] if e.words is None else [(-1, "text", w) for w in e.words]
            for branch in e.branches:
                for head in range(e.heads):
                    for token, stream, word in labels:
                        s = stats[i]
                        values = scale = None
                        if data is not None:
                            values = data[offset: offset + n].astype(np.uint16)
                            offset += n
                            if self._encoding == "u8":
                                mx = float(s[3])
                                scale = mx / 255.0 if mx > 0 else 1.0
                        ent = float(s[4])
                        yield MapRecord(
                            site=e.site, step=e.step, branch=branch, token=token,
                            head=head if reduction == "none" else -1, head_reduction=reduction, stage=e.stage,
                            height=e.height, width=e.width, encoding=self._encoding, data=values, n_values=n,
                            scale=scale, timestep=e.timestep, min=float(s[0]), mean=float(s[1]), std=float(s[2]),
                            max=float(s[3]), entropy=None if np.isnan(ent) else ent, q50=float(s[5]),
                            q90=float(s[6]), q99=float(s[7]), hist=hist[i].copy(), stream=stream, word=word,
                        )
                        i += 1

    def pop_balance(self, sample_key: str) -> list:
        """The :class:`store.records.BalanceRecord` rows of a finished sample (once; [] when the
        sample has none: balance off, or the sample failed before it was finished)."""
        return self._balance.pop(sample_key, [])

    def discard_sample(self) -> None:
        """Drop an unfinished sample (e.g. after a failed generation), waiting for its copies."""
        if self.has_pending:
            self.discarded += 1
        for step in self._done:
            step.wait()
        self._reset()

    def close(self) -> None:
        """Discard unfinished data and stop observing (idempotent)."""
        self.discard_sample()
        self.closed = True

    # --- convenience -----------------------------------------------------------------------------
    def generate(self, sample_key: str, prompt: str, identity, config, **kwargs):
        """``pipe.generate`` with this probe (and the spec's ``full_batch``), then
        :meth:`finish_sample`; the sample is discarded if generation raises.
        Returns ``(GenerationResult, records)``."""
        kwargs.setdefault("full_batch", self.spec.full_batch)
        if self.spec.words is not None:  # an absent word: a ConfigError before anything runs
            self._words(prompt.lower() if kwargs.get("lowercase", True) else prompt)
        try:
            result = self.pipe.generate(prompt, identity, config, observers=[self], **kwargs)
        except BaseException:
            self.discard_sample()
            raise
        return result, self.finish_sample(sample_key)


def _balance_records(entries: list[_BalanceEntry], values: np.ndarray) -> list:
    """BalanceRecords of one step from its host float32 values (layout of observe_balance)."""
    from store.records import BalanceRecord

    out, offset = [], 0
    for e in entries:
        nb, cells = len(e.branches), e.height * e.width
        means = values[offset: offset + 2 * nb].reshape(nb, 2)
        maps = values[offset + 2 * nb: offset + e.n_values].reshape(nb, 2, cells)
        offset += e.n_values
        for i, branch in enumerate(e.branches):
            out.append(BalanceRecord(site=e.site, step=e.step, branch=branch, text_norm=float(means[i, 0]),
                                     id_norm=float(means[i, 1]), height=e.height, width=e.width,
                                     text_norm_map=maps[i, 0].copy(), id_norm_map=maps[i, 1].copy(),
                                     n_rows=e.n_rows[i], n_queries=e.queries, timestep=e.timestep))
    return out


def summarise_step(maps: list[torch.Tensor], encoding: str) -> tuple[list, list, list]:
    """Summaries, histograms and encoded data of one step's maps (``[n_i, h_i, w_i]`` each), in
    the input order. Maps of one size are summarised in one batched call: a step of the full SDXL
    UNet has 70 probed sites but 3 map sizes, so this launches ~20x fewer device kernels than
    summarising each site where it is observed."""
    groups: dict[tuple, list[int]] = {}
    for i, m in enumerate(maps):
        groups.setdefault(tuple(m.shape[1:]), []).append(i)
    stats: list = [None] * len(maps)
    hists: list = [None] * len(maps)
    data: list = [None] * len(maps) if encoding != "none" else []
    for idx in groups.values():
        batch = maps[idx[0]] if len(idx) == 1 else torch.cat([maps[i] for i in idx])
        sizes = [maps[i].shape[0] for i in idx]
        s, h = R.summarise(batch)
        parts = [s.split(sizes), h.split(sizes)]
        if encoding != "none":
            parts.append(R.quantise(batch, encoding)[0].split(sizes))
        for k, i in enumerate(idx):
            stats[i], hists[i] = parts[0][k], parts[1][k]
            if encoding != "none":
                data[i] = parts[2][k]
    return stats, hists, data


@contextmanager
def capture(pipe, spec: CaptureSpec, sink: Callable[[list], object] | None = None) -> Iterator[Probe]:
    """Attach a :class:`Probe` to a ``FastFacePipeline`` for the duration of the block (see the
    module docstring for what is installed and what is put back)."""
    from fastface.method.processor import FastFaceAttnProcessor

    unet = pipe.pipe.unet
    processors = dict(unet.attn_processors)
    ctx = pipe.context
    if not any(isinstance(p, FastFaceAttnProcessor) and p.context is ctx for p in processors.values()):
        raise RuntimeError("capture: the UNet has no FastFace processors bound to this pipeline's context "
                           "(were they restored with restore_processors()?); probes cannot observe anything")
    probe = Probe(pipe, spec, sink)
    saved_observers = list(ctx.observers)
    ctx.observers.append(probe)
    failed = True
    try:
        yield probe
        failed = False
    finally:
        unfinished = probe.has_pending
        probe.close()
        ctx.observers = [o for o in saved_observers if o is not probe]
        now = unet.attn_processors
        changed = sorted(k for k in set(processors) | set(now) if processors.get(k) is not now.get(k))
        if unfinished and not failed:
            warnings.warn("capture: a sample was generated but never finished (probe.finish_sample); "
                          "its maps were discarded", RuntimeWarning, stacklevel=3)
        if changed:
            msg = f"capture: attention processors changed during capture: {changed[:4]}{'...' if len(changed) > 4 else ''}"
            if failed:
                warnings.warn(msg, RuntimeWarning, stacklevel=3)
            else:
                raise RuntimeError(msg)
