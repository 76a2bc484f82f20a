"""Decoupled classifier-free guidance (DCG, METHOD.md section 3) as pure functions.

The UNet runs on a batch of (up to) three branches per image, laid out branch-major: all
rows of branch 0, then all rows of branch 1, then branch 2. Which conditions each branch
carries is published per variant in :data:`LAYOUTS` so that probes and tools read the
layout instead of guessing (``eps(text, id)``; "0" = empty prompt / zero ID embedding):

========  ==========  ==========  ==========  ==============================
variant   branch 0    branch 1    branch 2    combination
========  ==========  ==========  ==========  ==============================
DCG_1     eps(0,0)    eps(text,0) eps(text,id) e0 + a(e1-e0) + b(e2-e1)
DCG_2     eps(0,0)    eps(0,id)   eps(text,id) e0 + a(e1-e0) + b(e2-e1)
DCG_3     eps(0,0)    eps(text,0) eps(0,id)    e0 + a(e1-e0) + b(e2-e0)
========  ==========  ==========  ==========  ==============================

The combination is evaluated as a weighted sum ``c0*e0 + c1*e1 + c2*e2`` whose zero
coefficients are skipped, so that a = b = 1 without rescale returns ``e2`` bit-exactly and
branches with a zero weight need not be computed at all (:func:`required_branches`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import torch

__all__ = [
    "Branch",
    "LAYOUTS",
    "BranchLayout",
    "coefficients",
    "required_branches",
    "combine",
    "combine_branches",
    "rescale_prediction",
]


@dataclass(frozen=True)
class Branch:
    """One guidance branch: a name and whether it sees the text prompt / the ID embedding."""

    name: str
    text: bool
    identity: bool


UNCOND = Branch("uncond", text=False, identity=False)
TEXT = Branch("text", text=True, identity=False)
ID = Branch("id", text=False, identity=True)
TEXT_ID = Branch("text_id", text=True, identity=True)

#: The published branch layout of each DCG variant (index = branch number).
LAYOUTS: dict[int, tuple[Branch, Branch, Branch]] = {
    1: (UNCOND, TEXT, TEXT_ID),
    2: (UNCOND, ID, TEXT_ID),
    3: (UNCOND, TEXT, ID),
}


@dataclass(frozen=True)
class BranchLayout:
    """The rows of one UNet batch: which branches (by index into ``LAYOUTS[variant]``) are
    present, in order, each with ``rows`` consecutive rows."""

    variant: int
    active: tuple[int, ...]
    rows: int = 1

    @property
    def branches(self) -> tuple[Branch, ...]:
        return tuple(LAYOUTS[self.variant][i] for i in self.active)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.branches)

    @property
    def batch_size(self) -> int:
        return len(self.active) * self.rows

    def rows_of(self, name: str) -> slice:
        """Batch rows of the branch called ``name`` (``KeyError`` if not in this batch)."""
        for pos, b in enumerate(self.branches):
            if b.name == name:
                return slice(pos * self.rows, (pos + 1) * self.rows)
        raise KeyError(f"branch {name!r} is not in this batch (present: {list(self.names)})")

    def to_dict(self) -> dict:
        return {"variant": self.variant, "branches": list(self.names), "rows": self.rows}


def coefficients(variant: int, alpha: float, beta: float) -> tuple[float, float, float]:
    """Weights (c0, c1, c2) such that the DCG combination equals ``c0*e0 + c1*e1 + c2*e2``."""
    if variant in (1, 2):  # e0 + a(e1 - e0) + b(e2 - e1)
        return (1.0 - alpha, alpha - beta, beta)
    if variant == 3:  # e0 + a(e1 - e0) + b(e2 - e0)
        return (1.0 - alpha - beta, alpha, beta)
    raise ValueError(f"variant must be 1, 2 or 3 (DCG_1..DCG_3), got {variant!r}")


def required_branches(
    variant: int, alpha: float, beta: float, *, rescale: float = 0.0, batch_coupled: bool = False
) -> tuple[int, ...]:
    """Branches whose UNet output changes the guided prediction at this step.

    Rescale reads e1 and e2; an attention transform whose normalisation spans the batch
    (``batch_coupled``, AM2 as released) makes every branch influence every other, so then
    all three are needed.
    """
    if batch_coupled:
        return (0, 1, 2)
    needed = {i for i, c in enumerate(coefficients(variant, alpha, beta)) if c != 0.0}
    if rescale > 0.0:
        needed |= {1, 2}
    return tuple(sorted(needed)) or (2,)


def rescale_prediction(
    pred: torch.Tensor,
    e1: torch.Tensor,
    e2: torch.Tensor,
    phi: float,
    *,
    terms: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Eq. 6 as released: per sample, stds over (C, H, W) (sample std, n - 1)::

        f = (std(e1) + std(e2)) / (2 * std(pred));  f = phi * f + (1 - phi);  pred * f

    With ``terms`` (the paper-text reading), the two guidance terms replace e1 and e2.
    """
    if phi <= 0.0:
        return pred
    a, b = terms if terms is not None else (e1, e2)
    dims = tuple(range(1, pred.ndim))
    f = (a.std(dim=dims, keepdim=True) + b.std(dim=dims, keepdim=True)) / (2.0 * pred.std(dim=dims, keepdim=True))
    f = phi * f + (1.0 - phi)
    return pred * f


def combine_branches(
    branches: Mapping[int, torch.Tensor] | Sequence[torch.Tensor | None],
    alpha: float,
    beta: float,
    *,
    variant: int = 2,
    rescale: float = 0.0,
    rescale_mode: str = "release",
) -> torch.Tensor:
    """Guided prediction from per-branch predictions (index -> tensor [n, C, H, W]).

    Only branches with a non-zero coefficient (and e1, e2 under rescale) must be given.
    """
    e = dict(branches) if isinstance(branches, Mapping) else dict(enumerate(branches))
    coeffs = coefficients(variant, alpha, beta)
    pred = None
    for i, c in enumerate(coeffs):
        if c == 0.0:
            continue
        if e.get(i) is None:
            raise ValueError(f"branch {i} has weight {c} but its prediction was not computed")
        term = e[i] if c == 1.0 else c * e[i]
        pred = term if pred is None else pred + term
    if pred is None:  # all weights zero: the guided prediction is zero
        ref = next(v for v in e.values() if v is not None)
        pred = torch.zeros_like(ref)
    if rescale > 0.0:
        if e.get(1) is None or e.get(2) is None:
            raise ValueError("rescale needs the predictions of branches 1 and 2")
        terms = None
        if rescale_mode == "paper":
            base = e[1] if variant in (1, 2) else e[0]
            terms = (alpha * (e[1] - e[0]), beta * (e[2] - base))
        pred = rescale_prediction(pred, e[1], e[2], rescale, terms=terms)
    return pred


def combine(
    noise_pred: torch.Tensor,
    alpha: float,
    beta: float,
    *,
    variant: int = 2,
    rescale: float = 0.0,
    rescale_mode: str = "release",
) -> torch.Tensor:
    """DCG combination of a full three-branch UNet output.

    ``noise_pred`` has the three branches stacked along the batch axis in the variant's
    layout (rows of branch 0, then 1, then 2; batch = 3n); returns the guided prediction for
    the n rows of one branch.
    """
    if noise_pred.shape[0] % 3:
        raise ValueError(f"noise_pred batch {noise_pred.shape[0]} is not 3 branches x n rows")
    e0, e1, e2 = noise_pred.chunk(3)
    return combine_branches(
        (e0, e1, e2), alpha, beta, variant=variant, rescale=rescale, rescale_mode=rescale_mode
    )
