"""Monitor configuration: what to watch for one deployment, and how.

A monitor is read from YAML or JSON (the control plane will serve the same shape)::

    deployment: loans-prod
    reference: profiles/loans.json     # a ReferenceProfile saved as JSON (or given in code)
    features:
      numeric: [car_value, loan_length]
      categorical: [salary_range]
    window: {kind: tumbling, size: 1h}   # or {kind: hopping, size: 1h, step: 15m}
                                         # or {kind: count, size: 5000}
    allowed_lateness: 5m
    min_samples: 200
    drift:
      numeric: [ks, wasserstein_normed]  # registry names (detectors.STATISTICS)
      categorical: [chi2, jensen_shannon]
      alpha: 0.05
      correction: bh
      thresholds: {wasserstein_normed: 0.1}
      effect_floor: {numeric: wasserstein_normed, categorical: jensen_shannon}
    performance: {task: classification, label_horizon: 1d}
    latency_slo_ms: 250
    custom_metrics: [tokens]

Defaults (chosen for detection quality, see ``DriftPolicy``): a p-value test per feature
(KS for numeric, chi-square for categorical) with Benjamini-Hochberg across the monitor's
features at alpha 0.05, and an effect-size floor so that a huge window does not alert on a
negligible shift: a test flags a feature only when the feature's normalised Wasserstein
distance (numeric, >= 0.1 reference standard deviations) or Jensen-Shannon distance
(categorical, >= 0.05) also crosses its threshold.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from detectors import STATISTICS, ReferenceProfile

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def parse_duration_ms(value: str | int | float) -> int:
    """Milliseconds from ``"250ms"``, ``"30s"``, ``"5m"``, ``"1h"``, ``"1d"``, ``"1w"``.

    A bare number is a number of seconds.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value * 1000)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"not a duration: {value!r} (examples: 30s, 5m, 1h, 1d)")
    return int(float(match.group(1)) * _UNIT_MS[match.group(2)])


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WindowSpec(_Model):
    """How events are grouped: by event time (tumbling, hopping) or by count."""

    kind: Literal["tumbling", "hopping", "count"] = "tumbling"
    size: str | int = Field(description="A duration (tumbling, hopping) or a number of events")
    step: str | None = Field(default=None, description="Hopping only: how far windows advance")

    @model_validator(mode="after")
    def _check(self) -> WindowSpec:
        if self.kind == "count":
            if not isinstance(self.size, int) or self.size < 1:
                raise ValueError("a count window's size is a positive number of events")
            if self.step is not None:
                raise ValueError("a count window has no step")
            return self
        size = parse_duration_ms(self.size)
        if size <= 0:
            raise ValueError("a window's size must be positive")
        if self.kind == "hopping":
            if self.step is None:
                raise ValueError("a hopping window needs a step")
            step = parse_duration_ms(self.step)
            if step <= 0 or size % step:
                raise ValueError("a hopping window's size must be a positive multiple of its step")
        elif self.step is not None:
            raise ValueError("only hopping windows have a step")
        return self

    @property
    def size_ms(self) -> int:
        """Window length in milliseconds (time windows)."""
        return parse_duration_ms(self.size)

    @property
    def step_ms(self) -> int:
        """How far consecutive windows start apart, in milliseconds (time windows)."""
        return parse_duration_ms(self.step) if self.step is not None else self.size_ms


_DEFAULT_FLOORS: dict[Literal["numeric", "categorical"], str] = {
    "numeric": "wasserstein_normed",
    "categorical": "jensen_shannon",
}


class DriftPolicy(_Model):
    """Which statistics run on which features, and when a feature counts as drifted."""

    numeric: tuple[str, ...] = ("ks", "wasserstein_normed")
    categorical: tuple[str, ...] = ("chi2", "jensen_shannon")
    alpha: float = Field(default=0.05, gt=0, lt=1)
    correction: Literal["bh", "bonferroni", "none"] = "bh"
    thresholds: dict[str, float] = Field(default_factory=dict)
    effect_floor: dict[Literal["numeric", "categorical"], str] = Field(
        default_factory=lambda: dict(_DEFAULT_FLOORS)
    )

    @model_validator(mode="after")
    def _check(self) -> DriftPolicy:
        for kind, names in (("numeric", self.numeric), ("categorical", self.categorical)):
            for name in names:
                spec = STATISTICS.get(name)
                if spec is None:
                    raise ValueError(f"unknown statistic {name!r}; known: {sorted(STATISTICS)}")
                if kind not in spec.feature_types:
                    raise ValueError(f"{name} does not take {kind} features")
        for kind, name in self.effect_floor.items():
            if name not in (self.numeric if kind == "numeric" else self.categorical):
                raise ValueError(f"the {kind} effect floor {name!r} must be one of its statistics")
        return self

    def threshold(self, name: str) -> float:
        """The threshold of ``name``: alpha for tests, else the configured or default one."""
        spec = STATISTICS[name]
        return self.alpha if spec.is_test else self.thresholds.get(name, spec.default_threshold)


class PerformanceSpec(_Model):
    """Model quality from labels: inline or joined later by request id."""

    task: Literal["classification", "regression"]
    classes: tuple[str, ...] = Field(
        default=(), description="Classification: the class labels, as text (1 -> '1')"
    )
    label_horizon: str = Field(default="0s", description="How long to wait for late labels")

    @model_validator(mode="after")
    def _check(self) -> PerformanceSpec:
        parse_duration_ms(self.label_horizon)
        if self.task == "classification" and len(self.classes) < 2:
            raise ValueError("classification needs its class labels (at least two)")
        return self

    @property
    def label_horizon_ms(self) -> int:
        """The label join horizon in milliseconds."""
        return parse_duration_ms(self.label_horizon)


class Monitor(_Model):
    """What to watch for one deployment (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    deployment: str = Field(min_length=1)
    reference: ReferenceProfile | None = None
    features: dict[Literal["numeric", "categorical"], tuple[str, ...]] = Field(default_factory=dict)
    window: WindowSpec = WindowSpec(kind="tumbling", size="1h")
    allowed_lateness: str = "0s"
    min_samples: int = Field(default=100, ge=1)
    drift: DriftPolicy = DriftPolicy()
    performance: PerformanceSpec | None = None
    latency_slo_ms: float | None = Field(default=None, gt=0)
    custom_metrics: tuple[str, ...] = ()

    @field_validator("reference", mode="before")
    @classmethod
    def _load_reference(cls, value: Any) -> Any:
        if isinstance(value, str | Path):
            return ReferenceProfile.from_dict(json.loads(Path(value).read_text()))
        if isinstance(value, dict):
            return ReferenceProfile.from_dict(value)
        return value

    @model_validator(mode="after")
    def _check(self) -> Monitor:
        parse_duration_ms(self.allowed_lateness)
        if self.reference is None:
            raise ValueError("a monitor needs a reference profile")
        numeric = self.features.get("numeric", self.reference.numeric)
        categorical = self.features.get("categorical", self.reference.categorical)
        missing = [f for f in numeric if f not in self.reference.numeric] + [
            f for f in categorical if f not in self.reference.categorical
        ]
        if missing:
            raise ValueError(f"features not in the reference profile: {missing}")
        return self

    @cached_property
    def profile(self) -> ReferenceProfile:
        """The reference profile of the watched features (all of the reference's by default).

        Windows keep sketches of exactly these features, so a monitor may watch some of a
        wider reference's features.
        """
        assert self.reference is not None
        return self.reference.select(self.numeric, self.categorical)

    @cached_property
    def fingerprint(self) -> str:
        """A digest of the whole monitor, reference profile included (32 hex characters).

        Two monitors with the same fingerprint window and close events identically, so a
        window's state built under one can go on under the other; any other change (a
        threshold, the window, the reference) gives another fingerprint.
        """
        spec = self.model_dump(mode="json", exclude={"reference"})
        body = {"spec": spec, "reference": self.profile.to_dict()}
        digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS))
        return digest.hexdigest()[:32]

    @property
    def numeric(self) -> tuple[str, ...]:
        """Numeric features watched (all of the reference's by default)."""
        assert self.reference is not None
        return tuple(self.features.get("numeric", self.reference.numeric))

    @property
    def categorical(self) -> tuple[str, ...]:
        """Categorical features watched (all of the reference's by default)."""
        assert self.reference is not None
        return tuple(self.features.get("categorical", self.reference.categorical))

    @property
    def lateness_ms(self) -> int:
        """Allowed lateness in milliseconds."""
        return parse_duration_ms(self.allowed_lateness)


def load_monitors(path: str | Path, *, base: Path | None = None) -> list[Monitor]:
    """Monitors from a YAML or JSON file holding one monitor or a list of them.

    A relative ``reference`` path is read relative to the file's folder.
    """
    path = Path(path)
    data = yaml.safe_load(path.read_text())
    items = data if isinstance(data, list) else [data]
    folder = base or path.parent
    monitors = []
    for item in items:
        reference = item.get("reference") if isinstance(item, dict) else None
        if isinstance(reference, str) and not Path(reference).is_absolute():
            item = {**item, "reference": str(folder / reference)}
        monitors.append(Monitor.model_validate(item))
    return monitors
