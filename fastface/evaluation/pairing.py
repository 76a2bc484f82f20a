"""Which ID photo each imported image belongs to: the identity order of ``fastface import
--order``, and the pairing sanity check it prints.

The release names its outputs ``{idx}.png`` with ``idx`` running over identities (outer) and
prompts (inner), the identities in ``os.listdir`` order of ``id_photos/`` **on the machine that
generated them** (not sorted: on ext4 ``id_00 .. id_12`` can list as ``id_01, id_12, id_03, ...``),
while its evaluation sorts the images by ``idx`` (metrics.py:56-60).  Pairing by sorted order
can therefore attach images to the wrong reference photos, silently.  ``--order``:

- ``sorted`` — identities sorted by file name (``fastface capture``'s order);
- ``listdir`` — ``os.listdir`` order of the dataset's photo folder **on this machine** (the
  same as the generating machine's only if the folder was never copied or rewritten);
- ``FILE`` — a text file with one identity per line (file name or stem), e.g. the generating
  machine's ``python -c "import os; print('\\n'.join(os.listdir('id_photos')))"``.

The sanity check compares each generated face (with an embedding) with every identity's
reference face: an image is *closer to its own* reference when its similarity to it is larger
than to any other identity's.  Correctly paired images of any ID-preserving method are
closer to their own reference almost always; a wrong order leaves about 1 / (number of
identities) of them so.  When fewer than ``WARN_BELOW`` of the checked images are closer to
their own reference, the import prints a loud warning with the share each other order would give.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

ORDERS = ("sorted", "listdir")
WARN_BELOW = 2 / 3
MIN_CHECKED = 3


class PairingError(ValueError):
    """An --order that cannot be applied; the message says why and how to fix it."""


def identity_names_in_order(dataset, order: str, *, listdir: Callable[[str], list] = os.listdir) -> list[str]:
    """The dataset's identity names in the order ``order`` ("sorted", "listdir" or a file path)."""
    names = [i.name for i in dataset.identities]
    if order == "sorted":
        return sorted(names)
    if order == "listdir":
        folders = {str(Path(i.path).parent) for i in dataset.identities}
        if len(folders) != 1:
            raise PairingError(f"--order listdir: the ID photos are in {len(folders)} folders; give --order FILE")
        folder = folders.pop()
        by_file = {Path(i.path).name: i.name for i in dataset.identities}
        listed = [by_file[f] for f in listdir(folder) if f in by_file]
        return listed
    path = Path(order)
    if not path.is_file():
        raise PairingError(f"--order {order!r}: not 'sorted', 'listdir' or an existing file with one identity per line")
    wanted = []
    for line in path.read_text(encoding="utf-8").splitlines():
        item = line.strip()
        if item and not item.startswith("#"):
            wanted.append(Path(item).stem if Path(item).suffix else item)
    missing, unknown = sorted(set(names) - set(wanted)), sorted(set(wanted) - set(names))
    dup = sorted({w for w in wanted if wanted.count(w) > 1})
    if missing or unknown or dup:
        bits = ([f"missing {missing[:10]}"] if missing else []) + ([f"unknown {unknown[:10]}"] if unknown else []) + (
            [f"repeated {dup[:10]}"] if dup else [])
        raise PairingError(f"--order {path}: must list each of the dataset's {len(names)} identities once "
                           f"({'; '.join(bits)})")
    return wanted


def reorder(dataset, order: str, *, listdir: Callable[[str], list] = os.listdir):
    """The dataset with its identities in ``order`` (pairs() then numbers images in that order)."""
    by_name = {i.name: i for i in dataset.identities}
    names = identity_names_in_order(dataset, order, listdir=listdir)
    return dataclasses.replace(dataset, identities=tuple(by_name[n] for n in names))


def closer_to_own(sims: np.ndarray, own: Sequence[int]) -> np.ndarray:
    """For each row of ``sims`` ([images, identities] similarities), whether the own column is
    strictly larger than every other column."""
    sims = np.asarray(sims, dtype=np.float64)
    own = np.asarray(own, dtype=np.int64)
    rows = np.arange(sims.shape[0])
    others = sims.copy()
    others[rows, own] = -np.inf
    return sims[rows, own] > others.max(axis=1)


@dataclass
class PairingReport:
    n_checked: int = 0                 # images with a generated face embedding
    n_closer: int = 0
    n_identities: int = 0              # identities with a reference embedding
    order: str = "sorted"
    alternatives: dict = field(default_factory=dict)  # order -> share closer under it
    note: str = ""                     # why nothing was checked

    @property
    def share(self) -> float:
        return self.n_closer / self.n_checked if self.n_checked else float("nan")

    @property
    def warn(self) -> bool:
        return self.n_checked >= MIN_CHECKED and self.n_identities >= 2 and self.share < WARN_BELOW

    def lines(self) -> list[str]:
        if self.note:
            return [f"pairing check: {self.note}"]
        out = [f"pairing check (--order {self.order}): {self.n_closer}/{self.n_checked} generated faces "
               f"({100 * self.share:.0f}%) are closer to their own ID photo than to any of the other "
               f"{self.n_identities - 1} identities"]
        if self.warn:
            alt = ", ".join(f"--order {k}: {100 * v:.0f}%" for k, v in self.alternatives.items())
            out = ["!" * 78, "WARNING: " + out[0],
                   "WARNING: the images are probably paired with the wrong ID photos. The release numbers its "
                   "images in os.listdir order of id_photos/ on the machine that generated them; import again "
                   "under a new --run-id with --order listdir or --order FILE (that machine's listing)."
                   + (f" Share closer with the other orders: {alt}." if alt else ""), "!" * 78]
        return out


def pairing_report(embeddings: dict[int, np.ndarray], references: dict[str, np.ndarray], names: Sequence[str],
                   n_prompts: int, order: str, alternatives: dict[str, Sequence[str]]) -> PairingReport:
    """The check over imported images: ``embeddings`` = image index -> generated face embedding,
    ``references`` = identity -> reference embedding, ``names`` = the identity of each block of
    ``n_prompts`` images under the chosen order; ``alternatives`` = other orders' name lists."""
    ids = [n for n in names if n in references]
    rep = PairingReport(order=order, n_identities=len(ids))
    if len(ids) < 2:
        rep.note = "needs reference faces of at least 2 identities"
        return rep
    items = [(i, e) for i, e in sorted(embeddings.items()) if names[i // n_prompts] in references]
    if not items:
        rep.note = "no generated face with an embedding among the images imported now"
        return rep
    col = {n: k for k, n in enumerate(ids)}
    refs = np.stack([_unit(references[n]) for n in ids])
    sims = np.stack([_unit(e) for _, e in items]) @ refs.T

    def share(order_names: Sequence[str]) -> tuple[int, int]:
        keep = [k for k, (i, _) in enumerate(items) if order_names[i // n_prompts] in col]
        own = [col[order_names[items[k][0] // n_prompts]] for k in keep]
        return int(closer_to_own(sims[keep], own).sum()) if keep else 0, len(keep)

    rep.n_closer, rep.n_checked = share(names)
    for key, other in alternatives.items():
        hit, n = share(other)
        if n:
            rep.alternatives[key] = hit / n
    return rep


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64).ravel()
    return v / (np.linalg.norm(v) + 1e-12)
