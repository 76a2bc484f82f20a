"""Typed, validated, serialisable FastFace configurations (METHOD.md sections 3-5).

A :class:`FastFaceConfig` is everything that decides how one image is generated apart
from the checkpoint, the prompt, the identity and the seed: the DCG guidance, the
attention manipulation (AM) and the adapter scales. Configurations are frozen
dataclasses validated in ``__post_init__``; ``to_dict``/``from_dict`` round-trip through
JSON (and TOML for files) and reject unknown keys with a message that names the key and
lists the valid ones. The paper's presets live as JSON data files in ``fastface/method/presets``.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

PARTS = ("down", "mid", "up")
Schedule = tuple[float, ...]


class ConfigError(ValueError):
    """A configuration value or key is invalid; the message says which and how to fix it."""


def _schedule(value: Any, name: str, *, minimum: float | None = None) -> Schedule:
    """Normalise a scalar or a sequence into a tuple schedule (one value per step index)."""
    values = [value] if isinstance(value, (int, float)) else list(value)
    if not values:
        raise ConfigError(f"{name}: the schedule is empty; give a number or one number per step")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConfigError(f"{name}: {v!r} is not a number")
        if minimum is not None and v < minimum:
            raise ConfigError(f"{name}: {v} is below the minimum {minimum}")
        out.append(float(v))
    return tuple(out)


def schedule_at(schedule: Schedule, step: int, num_steps: int, name: str) -> float:
    """Value of a per-step schedule at ``step`` (a one-value schedule is constant)."""
    if len(schedule) == 1:
        return schedule[0]
    if len(schedule) != num_steps:
        raise ConfigError(
            f"{name}: the schedule has {len(schedule)} values but the run has {num_steps} steps; "
            f"give one value (constant) or exactly {num_steps} values, or run {len(schedule)} steps"
        )
    return schedule[step]


def check_schedule_length(schedule: Schedule, num_steps: int, name: str) -> None:
    schedule_at(schedule, 0, num_steps, name)


@dataclass(frozen=True)
class GuidanceConfig:
    """Decoupled classifier-free guidance (METHOD.md section 3).

    ``alpha``/``beta`` are per-step schedules (a, b of the paper). ``None`` means "the
    checkpoint's own guidance scale" (1.0 for the distilled models, 1.5 for LCM, 5.0 for the
    50-step base), used by the baseline and AM-only presets.
    """

    variant: int = 2
    alpha: Schedule | None = None
    beta: Schedule | None = None
    rescale: float = 0.0
    rescale_mode: str = "release"  # "release": stds of e1, e2; "paper": stds of the two terms

    def __post_init__(self) -> None:
        if self.variant not in (1, 2, 3):
            raise ConfigError(f"guidance.variant: {self.variant!r} is not one of 1, 2, 3 (DCG_1..DCG_3)")
        for name in ("alpha", "beta"):
            v = getattr(self, name)
            if v is not None:
                object.__setattr__(self, name, _schedule(v, f"guidance.{name}"))
        if (self.alpha is None) != (self.beta is None):
            raise ConfigError("guidance: give both alpha and beta, or neither (checkpoint default)")
        if not 0.0 <= float(self.rescale) <= 1.0:
            raise ConfigError(f"guidance.rescale: {self.rescale} is outside [0, 1] (phi of Eq. 6; 0 = off)")
        object.__setattr__(self, "rescale", float(self.rescale))
        if self.rescale_mode not in ("release", "paper"):
            raise ConfigError(f"guidance.rescale_mode: {self.rescale_mode!r} is not 'release' or 'paper'")

    def resolved(self, default_scale: float) -> "GuidanceConfig":
        """This config with ``None`` schedules replaced by the checkpoint default."""
        if self.alpha is not None:
            return self
        return dataclasses.replace(self, alpha=(default_scale,), beta=(default_scale,))


@dataclass(frozen=True)
class AM1Config:
    """AM1, scale-power: f(A) = min(s * A^p, max_value) (Eq. 8). Release scales by default."""

    scale_down: float = 1.55
    scale_up: float = 1.45
    scale_mid: float = 1.0
    power: float = 1.3
    max_value: float = 10.0

    def __post_init__(self) -> None:
        for name in ("scale_down", "scale_up", "scale_mid", "power", "max_value"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
                raise ConfigError(f"am.am1.{name}: {v!r} must be a positive number")

    def scale_for(self, part: str) -> float:
        return {"down": self.scale_down, "mid": self.scale_mid, "up": self.scale_up}[part]


@dataclass(frozen=True)
class AM2Config:
    """AM2, scheduled softmax (Eqs. 9-10 as released), with optional AdaIN blend.

    ``quantile_dtype``: ``"float32"`` (default) compares the soft mask's quantile in float32;
    ``"float16"`` rounds it to float16 first, as the release does (release-exact rounding;
    it moves the block output by a few 1e-3)."""

    steepness: Schedule = (7.5, 5.0, 5.0, 5.0)
    quantile: Schedule = (0.65,)
    scale: Schedule = (1.0, 1.55, 1.55, 1.55)
    adain_weight: Schedule | None = None
    invert_first_token: bool = True
    normalization: str = "batch"  # "batch": norm() spans all rows (release); "branch": per DCG branch
    quantile_dtype: str = "float32"  # "float16": the release's rounding of the soft-mask quantile

    def __post_init__(self) -> None:
        object.__setattr__(self, "steepness", _schedule(self.steepness, "am.am2.steepness", minimum=0.0))
        q = _schedule(self.quantile, "am.am2.quantile", minimum=0.0)
        if any(v > 1.0 for v in q):
            raise ConfigError(f"am.am2.quantile: {q} must lie in [0, 1]")
        object.__setattr__(self, "quantile", q)
        object.__setattr__(self, "scale", _schedule(self.scale, "am.am2.scale", minimum=0.0))
        if self.adain_weight is not None:
            w = _schedule(self.adain_weight, "am.am2.adain_weight", minimum=0.0)
            if any(v > 1.0 for v in w):
                raise ConfigError(f"am.am2.adain_weight: {w} must lie in [0, 1]")
            object.__setattr__(self, "adain_weight", w)
        if self.normalization not in ("batch", "branch"):
            raise ConfigError(f"am.am2.normalization: {self.normalization!r} is not 'batch' or 'branch'")
        if self.quantile_dtype not in ("float32", "float16"):
            raise ConfigError(f"am.am2.quantile_dtype: {self.quantile_dtype!r} is not 'float32' or 'float16' "
                              "(float16 = round the soft-mask quantile as the release does)")


@dataclass(frozen=True)
class AMConfig:
    """Attention manipulation in the decoupled (ID) attention: which transform and where."""

    kind: str = "none"  # "none" | "am1" | "am2"
    parts: tuple[str, ...] = ("down", "up")
    tokens: tuple[int, ...] | None = None  # None = all ID tokens
    steps: tuple[int, ...] | None = None  # None = all steps
    am1: AM1Config = field(default_factory=AM1Config)
    am2: AM2Config = field(default_factory=AM2Config)

    def __post_init__(self) -> None:
        if self.kind not in ("none", "am1", "am2"):
            raise ConfigError(f"am.kind: {self.kind!r} is not one of 'none', 'am1', 'am2'")
        parts = tuple(self.parts)
        bad = [p for p in parts if p not in PARTS]
        if bad:
            raise ConfigError(f"am.parts: {bad} are not UNet parts; use any of {list(PARTS)}")
        object.__setattr__(self, "parts", parts)
        for name in ("tokens", "steps"):
            v = getattr(self, name)
            if v is not None:
                v = tuple(int(x) for x in v)
                if any(x < 0 for x in v):
                    raise ConfigError(f"am.{name}: indices must be >= 0, got {v}")
                object.__setattr__(self, name, v)

    @property
    def enabled(self) -> bool:
        return self.kind != "none"

    def applies(self, part: str, step: int) -> bool:
        return self.enabled and part in self.parts and (self.steps is None or step in self.steps)


@dataclass(frozen=True)
class FastFaceConfig:
    """One generation configuration: guidance + AM + adapter scales. Stored with every run."""

    name: str = "custom"
    guidance: GuidanceConfig = field(default_factory=GuidanceConfig)
    am: AMConfig = field(default_factory=AMConfig)
    ip_scale: float = 0.8
    lora_scale: float = 1.0
    description: str = ""

    def __post_init__(self) -> None:
        for name, hi in (("ip_scale", 5.0), ("lora_scale", 5.0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= hi:
                raise ConfigError(f"{name}: {v!r} must be a number in [0, {hi}]")
            object.__setattr__(self, name, float(v))

    def with_scales(self, ip_scale: float | None = None, lora_scale: float | None = None) -> "FastFaceConfig":
        return dataclasses.replace(
            self,
            ip_scale=self.ip_scale if ip_scale is None else ip_scale,
            lora_scale=self.lora_scale if lora_scale is None else lora_scale,
        )

    def validate_for_steps(self, num_steps: int) -> None:
        """Check every per-step schedule against the run's step count (clear error if not)."""
        g = self.guidance
        for name in ("alpha", "beta"):
            if getattr(g, name) is not None:
                check_schedule_length(getattr(g, name), num_steps, f"guidance.{name}")
        if self.am.kind == "am2":
            a2 = self.am.am2
            for name in ("steepness", "quantile", "scale", "adain_weight"):
                if getattr(a2, name) is not None:
                    check_schedule_length(getattr(a2, name), num_steps, f"am.am2.{name}")

    # --- serialisation -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return _to_plain(dataclasses.asdict(self))

    def to_json(self, **kw: Any) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, **kw)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FastFaceConfig":
        return _build(cls, data, "")

    @classmethod
    def from_json(cls, text: str) -> "FastFaceConfig":
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_file(cls, path: str | Path) -> "FastFaceConfig":
        p = Path(path)
        try:
            text = p.read_text()
        except OSError as e:
            raise ConfigError(f"config file {p}: cannot be read ({e.strerror}); check the path") from e
        try:
            if p.suffix == ".toml":
                import tomllib

                return cls.from_dict(tomllib.loads(text))
            return cls.from_json(text)
        except (json.JSONDecodeError, ValueError) as e:
            if isinstance(e, ConfigError):
                raise ConfigError(f"config file {p}: {e}") from e
            raise ConfigError(f"config file {p}: not valid {p.suffix.lstrip('.') or 'JSON'} ({e})") from e


_NESTED = {"guidance": GuidanceConfig, "am": AMConfig, "am1": AM1Config, "am2": AM2Config}


def _build(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a table/object, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"{prefix or 'config'}: unknown key(s) {unknown}; valid keys are {sorted(names)}"
        )
    kwargs = {}
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else key
        if key in _NESTED and isinstance(value, dict):
            value = _build(_NESTED[key], value, path)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"{prefix or 'config'}: {e}") from e


def _to_plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_plain(v) for v in obj]
    return obj


# --- presets ---------------------------------------------------------------------------
def preset_names() -> list[str]:
    root = resources.files("fastface.method") / "presets"
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".json"))


def load_preset(name: str) -> FastFaceConfig:
    """Load a preset (METHOD.md section 5) by name, e.g. ``ff-am2``."""
    names = preset_names()
    if name not in names:
        raise ConfigError(f"unknown preset {name!r}; available presets: {', '.join(names)}")
    text = (resources.files("fastface.method") / "presets" / f"{name}.json").read_text()
    return FastFaceConfig.from_json(text)


def resolve_config(preset: str | None = None, config_file: str | None = None) -> FastFaceConfig:
    """A preset by name, or a JSON/TOML file; exactly one of the two."""
    if config_file:
        return FastFaceConfig.from_file(config_file)
    return load_preset(preset or "baseline")


def as_sequence(x: Sequence[float] | float) -> tuple[float, ...]:
    return tuple(x) if isinstance(x, (list, tuple)) else (float(x),)
