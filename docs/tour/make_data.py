"""Writes the five-minute tour's data (README.md): a reference and three minutes of events.

``reference.csv``: 2,000 rows of ``income`` (normal, 5,000 +- 800), ``age`` (18-79) and
``region`` (four values). ``events.ndjson``: prediction events without a deployment and
with ``ts`` in milliseconds from the first minute's start (the tour stamps both): 300 in
minute 0 like the reference, 300 in minute 1 with ``income`` shifted by 1.5 standard
deviations, and 10 in minute 2, whose arrival closes minute 1's window.
Run ``python docs/tour/make_data.py`` to rewrite them; a test checks they are current.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import orjson
import polars as pl

FOLDER = Path(__file__).resolve().parent
REGIONS = ["north", "south", "east", "west"]
MINUTES = ((0, 0.0, 300), (1, 1.5, 300), (2, 0.0, 10))  # (minute, income shift in sd, events)


def reference() -> bytes:
    """The reference dataset as CSV."""
    rng = np.random.default_rng(11)
    rows = 2000
    frame = pl.DataFrame(
        {
            "income": np.round(rng.normal(5000, 800, rows), 2),
            "age": rng.integers(18, 80, rows),
            "region": rng.choice(REGIONS, rows),
        }
    )
    return frame.write_csv().encode()


def events() -> bytes:
    """The events as NDJSON, one prediction per line."""
    rng = np.random.default_rng(12)
    lines = []
    for minute, shift, count in MINUTES:
        for i in range(count):
            income = round(float(rng.normal(5000 + shift * 800, 800)), 2)
            event = {
                "event_id": f"e-{minute}-{i}",
                "ts": minute * 60_000 + i * (60_000 // count),
                "features": {
                    "income": income,
                    "age": int(rng.integers(18, 80)),
                    "region": str(rng.choice(REGIONS)),
                },
                "prediction": round(float(rng.random()), 3),
                "latency_ms": round(float(rng.gamma(2.0, 6.0)), 1),
            }
            lines.append(orjson.dumps(event))
    return b"\n".join(lines) + b"\n"


FILES = {"reference.csv": reference, "events.ndjson": events}


def main() -> None:
    """Write the files beside this script (or into the folder given)."""
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else FOLDER
    for name, make in FILES.items():
        (folder / name).write_bytes(make())


if __name__ == "__main__":
    main()
