"""Evaluation datasets: identities (ID photos) x prompts (METHOD.md section 6).

The paper's layout is a folder with ``id_photos/*.png`` and ``prompts.txt`` (all prompts),
``prompts_nostyle.txt`` (realistic) and ``prompts_style.txt`` (stylistic, "style; Person ..."
form). Any folder of photos plus one prompt file works too; a prompt's category is then
"stylistic" when it has the "style; ..." form, else "realistic".
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
CATEGORIES = ("realistic", "stylistic")


class DatasetError(ValueError):
    """The dataset folder or prompt file is missing or malformed; the message says which."""


@dataclass(frozen=True)
class IdentitySpec:
    name: str  # file stem, unique in the dataset
    path: str


@dataclass(frozen=True)
class PromptSpec:
    text: str
    category: str


@dataclass(frozen=True)
class Dataset:
    identities: tuple[IdentitySpec, ...]
    prompts: tuple[PromptSpec, ...]
    source: str = ""

    def pairs(self) -> list[tuple[int, IdentitySpec, PromptSpec]]:
        """Every (identity, prompt) pair in the paper's order: identities outer, prompts inner."""
        out = []
        for i, ident in enumerate(self.identities):
            for j, prompt in enumerate(self.prompts):
                out.append((i * len(self.prompts) + j, ident, prompt))
        return out

    def to_dict(self) -> dict:
        return {"source": self.source, "identities": [i.__dict__ for i in self.identities],
                "prompts": [p.__dict__ for p in self.prompts]}


def category_of(prompt: str) -> str:
    return "stylistic" if ";" in prompt else "realistic"


def read_prompts(path: str | Path, category: str | None = None) -> list[PromptSpec]:
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise DatasetError(f"prompt file {p}: cannot be read ({e.strerror}); give a text file, one prompt per line") from e
    prompts = [PromptSpec(line.strip(), category or category_of(line)) for line in lines
               if line.strip() and not line.lstrip().startswith("#")]
    if not prompts:
        raise DatasetError(f"prompt file {p}: has no prompts; write one prompt per line")
    return prompts


def read_photos(folder: str | Path) -> list[IdentitySpec]:
    d = Path(folder)
    if not d.is_dir():
        raise DatasetError(f"photo folder {d}: not a folder; give a folder of ID photos (*.png, *.jpg)")
    files = sorted(f for f in d.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DatasetError(f"photo folder {d}: has no images ({', '.join(IMAGE_SUFFIXES)})")
    return [IdentitySpec(f.stem, str(f.resolve())) for f in files]


def load_dataset(folder: str | Path | None = None, *, photos: str | Path | None = None,
                 prompts: str | Path | None = None, prompt_set: str = "all") -> Dataset:
    """The paper's layout (``folder``), or ``photos`` + ``prompts``.

    ``prompt_set``: "all" (prompts_nostyle + prompts_style, or prompts.txt), "realistic" or
    "stylistic".
    """
    if folder is not None:
        root = Path(folder)
        if not root.is_dir():
            raise DatasetError(f"dataset {root}: not a folder; expected id_photos/ and prompts*.txt inside")
        photos = photos or root / "id_photos"
        if prompts is None:
            nostyle, style = root / "prompts_nostyle.txt", root / "prompts_style.txt"
            chosen: list[PromptSpec] = []
            if nostyle.exists() and prompt_set in ("all", "realistic"):
                chosen += read_prompts(nostyle, "realistic")
            if style.exists() and prompt_set in ("all", "stylistic"):
                chosen += read_prompts(style, "stylistic")
            if not chosen:
                if not (root / "prompts.txt").exists():
                    raise DatasetError(f"dataset {root}: no prompts.txt, prompts_nostyle.txt or prompts_style.txt")
                chosen = [p for p in read_prompts(root / "prompts.txt")
                          if prompt_set == "all" or p.category == prompt_set]
            return Dataset(tuple(read_photos(photos)), tuple(chosen), str(root))
    if photos is None or prompts is None:
        raise DatasetError("give a dataset folder, or both a photo folder and a prompt file")
    chosen = [p for p in read_prompts(prompts) if prompt_set == "all" or p.category == prompt_set]
    return Dataset(tuple(read_photos(photos)), tuple(chosen), str(photos))


#: The face world's demo prompts: one close-up and one wide shot (the face size differs ~2.5x).
FACE_WORLD_DEMO_PROMPTS = ("close-up portrait of a person, blue plain background",
                           "wide shot of a person, green striped background")


def write_demo_dataset(folder: str | Path, *, world: str = "random") -> Dataset:
    """A small real dataset from photos that ship in installed packages (offline).

    ``world="face"``: the eight identities of the face world (:mod:`fastface.models.faceworld`) and
    two of its prompts; ``world="random"``: the astronaut and Tom Hanks with two paper-style
    prompts (the tiny random-weight world has no notion of either).
    """
    from PIL import Image

    from fastface.faces.photos import sample_photos

    root = Path(folder)
    (root / "id_photos").mkdir(parents=True, exist_ok=True)
    for name, arr in sample_photos(group_crops=world == "face").items():
        path = root / "id_photos" / f"{name}.png"
        if not path.exists():
            Image.fromarray(arr).save(path)
    if world == "face":
        (root / "prompts_nostyle.txt").write_text("\n".join(FACE_WORLD_DEMO_PROMPTS) + "\n")
        (root / "prompts_style.txt").unlink(missing_ok=True)
    else:
        (root / "prompts_nostyle.txt").write_text("a photo of a person in a park\n")
        (root / "prompts_style.txt").write_text("watercolor painting; Person in a garden\n")
    return load_dataset(root)
