"""Detection quality at the default policy, against River and NannyML on the same stream.

One stream of 10 numeric features: 40 windows of 5,000 events drawn like the reference,
then 10 windows in which features 0-4 shift by 0.2 reference standard deviations (5-9 stay
put). Driftline runs its default monitor (KS with Benjamini-Hochberg at alpha 0.05, plus
the normalised-Wasserstein floor of 0.1) on 5,000-event windows. Printed:

* false alarms: the share of (window x feature) flagged before the shift (target <= 1 %);
  for River's per-event detectors, the alarms raised in those 2,000,000 updates;
* detection: the window (1 = the first full window after the shift) in which the shift is
  flagged (target: 1); for River, the events after the shift before its first alarm.

    .venv/bin/python benchmarks/quality.py [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from detectors import ReferenceProfile  # noqa: E402
from engine.deadletter import MemoryDeadLetters  # noqa: E402
from engine.decode import Decoded, PredictionColumns  # noqa: E402
from engine.monitor import Monitor  # noqa: E402
from engine.pipeline import Pipeline  # noqa: E402
from engine.sinks import MemorySink  # noqa: E402

FEATURES = 10
SHIFTED = 5
WINDOW = 5000
STATIONARY_WINDOWS = 40
SHIFTED_WINDOWS = 10
SHIFT_SD = 0.2
PEER_PYTHON = HERE / ".venv-peers" / "bin" / "python"


def data(seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    rng = np.random.default_rng(seed)
    reference = rng.normal(size=(50_000, FEATURES))
    step = STATIONARY_WINDOWS * WINDOW
    stream = rng.normal(size=(step + SHIFTED_WINDOWS * WINDOW, FEATURES))
    stream[step:, :SHIFTED] += SHIFT_SD
    return reference, stream, step


def driftline(reference: np.ndarray, stream: np.ndarray, step: int) -> dict[str, Any]:
    names = tuple(f"f{j}" for j in range(FEATURES))
    monitor = Monitor(
        deployment="q",
        reference=ReferenceProfile.fit(reference, numeric=names),
        window={"kind": "count", "size": WINDOW},
    )
    sink = MemorySink()
    pipeline = Pipeline(
        organization="q", monitors=[monitor], sink=sink, dead_letters=MemoryDeadLetters()
    )
    n = len(stream)
    rows = PredictionColumns(
        deployment="q",
        event_id=np.array([str(i) for i in range(n)], dtype=object),
        ts_ms=np.arange(n, dtype=np.int64),
        numeric={name: stream[:, j] for j, name in enumerate(names)},
        categorical={},
        prediction_value=np.zeros(n),
        prediction_class=np.full(n, None, dtype=object),
        label=np.full(n, None, dtype=object),
        latency_ms=np.full(n, np.nan),
        request_id=np.full(n, None, dtype=object),
        error=np.zeros(n, dtype=bool),
        metrics={},
        payload=lambda i: b"",
    )
    pipeline.process(Decoded(predictions=[rows]))
    pipeline.flush()
    windows = [r for r in sink.results if r.phase == "window"]
    before = windows[:STATIONARY_WINDOWS]
    flagged = sum(len(w.drifted_features) for w in before)
    detected = [
        k + 1
        for k, w in enumerate(windows[STATIONARY_WINDOWS:])
        if set(w.drifted_features) & {f"f{j}" for j in range(SHIFTED)}
    ]
    controls = sum(
        1 for w in windows[STATIONARY_WINDOWS:] for f in w.drifted_features if int(f[1:]) >= SHIFTED
    )
    return {
        "false_share": flagged / (len(before) * FEATURES),
        "detection_window": detected[0] if detected else None,
        "shifted_flagged_share": sum(
            len(set(w.drifted_features) & {f"f{j}" for j in range(SHIFTED)})
            for w in windows[STATIONARY_WINDOWS:]
        )
        / (SHIFTED_WINDOWS * SHIFTED),
        "controls_flagged_after_shift": controls,
    }


def peers(reference: np.ndarray, stream: np.ndarray, step: int) -> dict[str, Any]:
    if not PEER_PYTHON.exists():
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "quality.npz"
        np.savez(path, reference=reference, stream=stream, chunk=WINDOW, step=step)
        out = subprocess.run(
            [str(PEER_PYTHON), str(HERE / "peers" / "run_peers.py"), "--data", str(path),
             "--case", "quality"],
            capture_output=True, check=True, text=True,
        )  # fmt: skip
    results: dict[str, Any] = json.loads(out.stdout)["results"]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    reference, stream, step = data(args.seed)
    ours = driftline(reference, stream, step)
    print(
        f"quality: {FEATURES} features, {STATIONARY_WINDOWS} stationary windows of {WINDOW:,} "
        f"events, then a {SHIFT_SD} sd shift on {SHIFTED} features for {SHIFTED_WINDOWS} windows"
    )
    print(f"{'detector':<34} {'false alarms':>22} {'detected':>30}")
    print(
        f"{'Driftline defaults':<34} {ours['false_share']:>21.2%} "
        f"{'window ' + str(ours['detection_window']):>30}"
    )
    print(
        f"{'':<34} {'':>22} {ours['shifted_flagged_share']:>20.0%} of shifted cells; "
        f"{ours['controls_flagged_after_shift']} control flags"
    )
    for name, result in peers(reference, stream, step).items():
        if "error" in result:
            print(f"{name:<34} error: {result['error']}")
        elif "false_share" in result:
            share = result["false_share"]
            when = result["detection_window"]
            print(f"{name:<34} {share:>21.2%} {'window ' + str(when):>30}")
        else:
            alarms = f"{result['false_alarms']} in {result['events_examined_before_step']:,}"
            delay = result["detection_delay_events"]
            print(f"{name:<34} {alarms:>22} {str(delay) + ' events after':>30}")


if __name__ == "__main__":
    main()
