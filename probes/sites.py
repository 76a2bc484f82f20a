"""Attention sites of an SDXL UNet, parsed once from diffusers processor keys.

A *site* is a diffusers attention-processor key without the trailing ``.processor``, e.g.
``up_blocks.0.attentions.2.transformer_blocks.6.attn2``. :func:`parse_site` turns it into a
:class:`Site` (UNet part, block, attention, transformer layer, self/cross attention, heads);
:meth:`Site.resolution` gives the (height, width) of the site's query grid for a latent size:

==================  ======================================  ==========================
key prefix          downsamplings ``level``                 SDXL 1024 px (128 latent)
==================  ======================================  ==========================
``down_blocks.k``   ``k``                                   k=1: 64x64, k=2: 32x32
``mid_block``       ``n_down - 1``                          32x32
``up_blocks.k``     ``n_down - 1 - k``                      k=0: 32x32, k=1: 64x64
==================  ======================================  ==========================

``n_down`` = ``len(unet.config.down_block_types)`` (3 for SDXL and for the tiny UNet). Each
downsampling is a stride-2 convolution with padding 1, so a side ``s`` becomes ``ceil(s / 2)``.
"""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

__all__ = ["Site", "parse_site", "sites_of", "select_sites", "PARTS"]

PARTS = ("down", "mid", "up")
_PART_OF = {"down_blocks": "down", "mid_block": "mid", "up_blocks": "up"}
_KEY_RE = re.compile(
    r"(?P<prefix>down_blocks\.(?P<dblock>\d+)|mid_block|up_blocks\.(?P<ublock>\d+))"
    r"\.attentions\.(?P<attention>\d+)\.transformer_blocks\.(?P<layer>\d+)\.(?P<attn>attn[12])"
)


@dataclass(frozen=True)
class Site:
    """One attention site of the UNet.

    ``block`` is the index in ``down_blocks``/``up_blocks`` (``None`` for ``mid_block``);
    ``heads`` is the Attention module's head count (``None`` when parsed without a UNet);
    ``n_down`` is the number of UNet down blocks (levels), which fixes the grid of mid/up sites.
    """

    key: str
    part: str
    block: int | None
    attention: int
    layer: int
    attn: str = "attn2"
    heads: int | None = None
    n_down: int = 3

    @property
    def level(self) -> int:
        """How many times the latent is downsampled before this site (0 = full latent)."""
        if self.part == "down":
            return self.block
        if self.part == "mid":
            return self.n_down - 1
        return self.n_down - 1 - self.block

    def resolution(self, latent_hw: tuple[int, int]) -> tuple[int, int]:
        """(height, width) of the query grid for a latent of ``latent_hw`` = (h, w)."""
        h, w = int(latent_hw[0]), int(latent_hw[1])
        if h <= 0 or w <= 0:
            raise ValueError(f"{self.key}: latent size must be positive, got {latent_hw}")
        if self.level < 0:
            raise ValueError(f"{self.key}: up block {self.block} does not exist with n_down={self.n_down}")
        for _ in range(self.level):
            h, w = -(-h // 2), -(-w // 2)
        return h, w

    def queries(self, latent_hw: tuple[int, int]) -> int:
        h, w = self.resolution(latent_hw)
        return h * w

    def matches(self, pattern: str) -> bool:
        """``pattern`` is a part ('down'/'mid'/'up'), an exact key or an ``fnmatch`` glob."""
        if pattern in PARTS:
            return self.part == pattern
        return pattern == self.key or fnmatch.fnmatchcase(self.key, pattern)

    def site_record(self, latent_hw: tuple[int, int]):
        """The store's :class:`store.records.SiteRecord` of this site (mid block -> block 0)."""
        from store.records import SiteRecord

        if self.heads is None:
            raise ValueError(f"{self.key}: heads unknown; parse the site with heads= or use sites_of(unet)")
        h, w = self.resolution(latent_hw)
        return SiteRecord(site=self.key, part=self.part, block=self.block or 0, attention=self.attention,
                          layer=self.layer, attn=self.attn, heads=self.heads, height=h, width=w)


def parse_site(key: str, *, heads: int | None = None, n_down: int = 3) -> Site:
    """Parse a processor key (a trailing ``.processor`` is accepted and dropped).

    Raises ``ValueError`` for anything that is not
    ``(down_blocks.K|mid_block|up_blocks.K).attentions.A.transformer_blocks.L.attn{1,2}``.
    """
    if not isinstance(key, str):
        raise ValueError(f"a site key must be a string, got {type(key).__name__}")
    site = key[: -len(".processor")] if key.endswith(".processor") else key
    m = _KEY_RE.fullmatch(site)
    if not m:
        raise ValueError(
            f"{key!r} is not an SDXL attention site; expected "
            "'down_blocks.<k>|mid_block|up_blocks.<k>' + '.attentions.<a>.transformer_blocks.<l>.attn1|attn2', "
            "e.g. 'up_blocks.0.attentions.2.transformer_blocks.6.attn2'"
        )
    part = _PART_OF[m["prefix"].split(".")[0]]
    block = m["dblock"] if part == "down" else m["ublock"]
    if heads is not None and (isinstance(heads, bool) or int(heads) <= 0):
        raise ValueError(f"{site}: heads must be a positive integer, got {heads!r}")
    if int(n_down) < 1:
        raise ValueError(f"{site}: n_down must be >= 1, got {n_down!r}")
    return Site(key=site, part=part, block=None if block is None else int(block), attention=int(m["attention"]),
                layer=int(m["layer"]), attn=m["attn"], heads=None if heads is None else int(heads),
                n_down=int(n_down))


def sites_of(unet) -> list[Site]:
    """The IP-Adapter sites of ``unet`` (diffusers' or FastFace's IP-Adapter processors), in
    processor order, with heads read from each Attention module."""
    from diffusers.models.attention_processor import IPAdapterAttnProcessor2_0

    n_down = len(unet.config.down_block_types)
    out = []
    for name, proc in unet.attn_processors.items():
        if not isinstance(proc, IPAdapterAttnProcessor2_0):
            continue
        key = name[: -len(".processor")]
        module = unet.get_submodule(key)
        out.append(parse_site(key, heads=module.heads, n_down=n_down))
    return out


def select_sites(sites: list[Site], patterns: tuple[str, ...] | None) -> list[Site]:
    """Sites matching any of ``patterns`` (``None`` = all). A pattern that matches no site is
    an error (a typo would otherwise capture nothing silently)."""
    if patterns is None:
        return list(sites)
    unmatched = [p for p in patterns if not any(s.matches(p) for s in sites)]
    if unmatched:
        raise ValueError(f"site pattern(s) {unmatched} match no IP-Adapter site; sites are "
                         f"{[s.key for s in sites]}")
    return [s for s in sites if any(s.matches(p) for p in patterns)]
