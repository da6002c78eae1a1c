"""Small builders shared by the engine tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from detectors import ReferenceProfile
from engine.monitor import Monitor

T0 = 1_764_237_600_000  # 2025-11-27T10:00:00Z
NOW = T0 + 365 * 86_400_000


def profile(seed: int = 0, rows: int = 4000) -> ReferenceProfile:
    rng = np.random.default_rng(seed)
    return ReferenceProfile.fit(
        {
            "x": rng.normal(size=rows),
            "y": rng.exponential(size=rows),
            "c": rng.choice(["a", "b"], rows),
        }
    )


def monitor(**overrides: Any) -> Monitor:
    settings: dict[str, Any] = {
        "deployment": "d",
        "reference": profile(),
        "window": {"kind": "tumbling", "size": "1m"},
        "min_samples": 50,
    }
    settings.update(overrides)
    return Monitor.model_validate(settings)


def event(i: int, ts: int, *, shift: float = 0.0, seed: int | None = None, **extra: Any) -> bytes:
    rng = np.random.default_rng(i if seed is None else seed)
    body: dict[str, Any] = {
        "event_id": f"e{i}",
        "ts": ts,
        "deployment": "d",
        "features": {
            "x": float(rng.normal(shift)),
            "y": float(rng.exponential()),
            "c": "a" if rng.random() < 0.5 else "b",
        },
        "prediction": 0.3,
        "latency_ms": 10.0,
    }
    body.update(extra)
    return orjson.dumps(body)
