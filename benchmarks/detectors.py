"""Driftline's detectors against peer drift-detection libraries, on the same seeded data.

Usage (from the repository root, with Driftline's venv):

    .venv/bin/python benchmarks/detectors.py [--case large|streaming|ingest|all]
        [--repeat N] [--peer-windows W] [--quick] [--no-setup]

Each case draws its data from ``np.random.default_rng(0)``, writes what the peers need to
``benchmarks/.data/*.npz`` and times, one after the other (never concurrently):

* Driftline's functions in this process: one warm-up call (it builds caches), then
  ``--repeat`` timed calls, ``time.perf_counter`` around the call only;
* the peers (Evidently, alibi-detect, River, NannyML, scipy) in the peer venv
  ``benchmarks/.venv-peers`` through ``benchmarks/peers/run_peers.py`` (see its docstring
  for what each peer's clock covers); the venv is built by ``benchmarks/setup_peers.sh``
  when missing.

Every table shows medians of the repeats and ``ratio = peer median / Driftline median``
(how many times faster Driftline is). The results go to
``benchmarks/.data/detectors-results.json``. See ``benchmarks/README.md`` for the caveats.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# This script is named like the package it measures: keep its own folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
import scipy  # noqa: E402
from numpy.typing import NDArray  # noqa: E402

import detectors  # noqa: E402
from detectors.binning import bin_counts, quantile_binning  # noqa: E402
from detectors.psi import psi_from_counts  # noqa: E402

DATA = HERE / ".data"
PEER_PYTHON = HERE / ".venv-peers" / "bin" / "python"
RUN_PEERS = HERE / "peers" / "run_peers.py"
SETUP_PEERS = HERE / "setup_peers.sh"
RESULTS = DATA / "detectors-results.json"
CASES = ("large", "streaming", "ingest")
Matrix = NDArray[np.float64]


@dataclass(frozen=True)
class Shapes:
    """Data sizes of the three cases (full run or ``--quick``)."""

    large_rows: int  # reference and current rows
    large_features: int
    stream_reference_rows: int
    stream_features: int
    windows: int
    window_rows: int
    peer_windows: int  # default for --peer-windows
    psi_refit_windows: int  # windows for the (slow) psi(reference, window) variant
    ingest_reference_rows: int
    ingest_features: int
    ingest_rows: int  # rows per ingested batch
    stream_values: int  # values fed one by one to the River detectors


FULL = Shapes(100_000, 50, 10_000, 20, 2_000, 1_000, 100, 100, 100_000, 50, 100_000, 200_000)
QUICK = Shapes(5_000, 10, 2_000, 6, 40, 200, 10, 10, 10_000, 10, 20_000, 5_000)


@dataclass
class Timing:
    """Seconds (wall and CPU) of the timed repeats of one contender."""

    seconds: list[float]
    cpu: list[float]
    note: str = ""
    scale: float = 1.0  # factor from the measured work to the case's full workload

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) * self.scale

    @property
    def cpu_per_wall(self) -> float:
        return sum(self.cpu) / sum(self.seconds)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "cpu_seconds": self.cpu,
            "scale": self.scale,
            "median": self.median,
            "note": self.note,
        }


@dataclass(frozen=True)
class Versus:
    """One ratio to print: a peer against a Driftline contender, with the issue's target."""

    peer: str
    contender: str
    target: float | None = None


@dataclass(frozen=True)
class Check:
    """A correctness check run beside the timings; ``ok`` is None when it could not run."""

    label: str
    ok: bool | None
    detail: str


@dataclass
class CaseResult:
    """Everything one case measured, printed and saved."""

    name: str
    title: str
    contenders: dict[str, Timing] = field(default_factory=dict)
    peers: dict[str, Any] = field(default_factory=dict)
    comparisons: list[dict[str, Any]] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    quick: bool = False  # --quick shapes: the targets are not assessed

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "driftline": {k: t.to_dict() for k, t in self.contenders.items()},
            "peers": self.peers,
            "comparisons": self.comparisons,
            "checks": [vars(c) for c in self.checks],
            **self.extra,
        }


def progress(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


def measure(
    work: Callable[[], object],
    repeat: int,
    *,
    warmup: Callable[[], object] | None = None,
    note: str = "",
    scale: float = 1.0,
) -> Timing:
    """One untimed warm-up (``warmup`` or ``work``), then ``repeat`` timed runs of ``work``."""
    (warmup or work)()
    seconds: list[float] = []
    cpu: list[float] = []
    for _ in range(repeat):
        cpu_start = time.process_time()
        start = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
    return Timing(seconds, cpu, note, scale)


# ----------------------------------------------------------------------------- peers


def ensure_peer_venv(no_setup: bool) -> None:
    """Build the peer venv with setup_peers.sh when it is missing (unless --no-setup)."""
    if PEER_PYTHON.exists():
        return
    if no_setup:
        raise SystemExit(
            f"peer venv missing: {PEER_PYTHON} does not exist; run benchmarks/setup_peers.sh "
            "(or drop --no-setup to let this script run it)"
        )
    print(f"peer venv missing: running {SETUP_PEERS}", file=sys.stderr, flush=True)
    subprocess.run(["bash", str(SETUP_PEERS)], check=True)
    if not PEER_PYTHON.exists():
        raise SystemExit(f"setup_peers.sh ran but {PEER_PYTHON} is still missing")


def run_peers(data: Path, case: str, repeat: int, windows: int | None = None) -> dict[str, Any]:
    """Run run_peers.py in the peer venv and return its JSON (stderr goes to a log file)."""
    command = [str(PEER_PYTHON), str(RUN_PEERS), "--data", str(data), "--case", case]
    command += ["--repeat", str(repeat)]
    if windows is not None:
        command += ["--windows", str(windows)]
    log = DATA / f"peers-{data.stem}.log"
    progress(f"peers ({case}) in the peer venv; their stderr goes to {log.relative_to(REPO)}")
    with log.open("w") as stderr:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=REPO)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = "\n".join(log.read_text().splitlines()[-20:])
        raise SystemExit(f"run_peers.py failed (exit {done.returncode}); end of {log}:\n{tail}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def peer_seconds(peers: dict[str, Any], name: str) -> list[float] | None:
    entry = peers.get("results", {}).get(name, {})
    seconds = entry.get("seconds")
    return [float(s) for s in seconds] if seconds else None


def peer_sample(peers: dict[str, Any], name: str, key: str) -> list[float] | None:
    sample = peers.get("results", {}).get(name, {}).get("sample", {})
    values = sample.get(key)
    return [float(v) for v in values] if values is not None else None


def compare(
    result: CaseResult, versus: Sequence[Versus], peer_scale: float = 1.0
) -> list[dict[str, Any]]:
    """Ratios peer median (times ``peer_scale``) / Driftline contender median."""
    rows = []
    for v in versus:
        seconds = peer_seconds(result.peers, v.peer)
        ours = result.contenders[v.contender].median
        row: dict[str, Any] = {"peer": v.peer, "contender": v.contender, "target": v.target}
        if seconds is None:
            error = result.peers.get("results", {}).get(v.peer, {}).get("error", "not run")
            row |= {"peer_median": None, "driftline_median": ours, "ratio": None, "error": error}
        else:
            theirs = statistics.median(seconds) * peer_scale
            ratio = theirs / ours
            row |= {"peer_median": theirs, "driftline_median": ours, "ratio": ratio}
            if v.target is not None:
                row["target_met"] = ratio >= v.target
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------- printing


def fmt_seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if value < 10 else f"{value:.2f}"


def fmt_rate(value: float) -> str:
    return f"{value / 1e6:.2f} M/s" if value >= 1e5 else f"{value / 1e3:.1f} k/s"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return indent + "  ".join([first, *rest]).rstrip()

    print(line(header))
    print(indent + "  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))


def print_contenders(result: CaseResult, per_window: int | None = None) -> None:
    header = ["Driftline contender", "median s", "min s", "cpu/wall"]
    if per_window:
        header.append("ms/window")
    rows = []
    for name, t in result.contenders.items():
        row = [name, fmt_seconds(t.median), fmt_seconds(min(t.seconds) * t.scale)]
        row.append(f"{t.cpu_per_wall:.2f}")
        if per_window:
            row.append(f"{t.median / per_window * 1e3:.3f}")
        rows.append(row)
    table(header, rows)
    for name, t in result.contenders.items():
        if t.note:
            print(f"    * {name}: {t.note}")


def print_comparisons(result: CaseResult, peer_header: str = "peer median s") -> None:
    rows = []
    for row in result.comparisons:
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.1f}x"
        if row["target"] is None or result.quick:
            target = ""
        elif row["ratio"] is None:
            target = f">= {row['target']:g}x: n/a"
        else:
            target = f">= {row['target']:g}x: " + ("met" if row["target_met"] else "NOT MET")
        peer = row["peer"] + (f" (error: {row['error'][:60]})" if "error" in row else "")
        cells = [peer, fmt_seconds(row["peer_median"]), row["contender"]]
        rows.append([*cells, fmt_seconds(row["driftline_median"]), ratio, target])
    header = [peer_header, "", "vs Driftline contender", "median s", "ratio", "issue target"]
    header[0], header[1] = "peer", peer_header
    table(header, rows)


def print_checks(checks: Sequence[Check]) -> None:
    for c in checks:
        mark = {True: "\u2713", False: "\u2717 FAILED", None: "- skipped"}[c.ok]
        print(f"  {mark} {c.label}: {c.detail}")


def check_close(
    label: str, ours: Sequence[float], theirs: Sequence[float] | None, tolerance: float
) -> Check:
    if theirs is None:
        return Check(label, None, "peer sample missing (peer failed?)")
    a = np.asarray(ours[: len(theirs)], dtype=np.float64)
    b = np.asarray(theirs, dtype=np.float64)
    diff = float(np.max(np.abs(a - b)))
    detail = f"features 0..{len(b) - 1}, max |diff| = {diff:.2e} (tolerance {tolerance:g})"
    return Check(label, diff <= tolerance, detail)


# ----------------------------------------------------------------------------- cases


def feature_names(count: int) -> list[str]:
    return [f"f{j}" for j in range(count)]


def frame(matrix: Matrix, names: Sequence[str]) -> pl.DataFrame:
    return pl.DataFrame({n: matrix[:, j] for j, n in enumerate(names)})


def case_large(shapes: Shapes, repeat: int, suffix: str) -> CaseResult:
    n, d = shapes.large_rows, shapes.large_features
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(n, d))
    current = rng.normal(size=(n, d))
    current[:, : d // 2] += 0.2
    path = DATA / f"large{suffix}.npz"
    np.savez(path, reference=reference, current=current)
    result = CaseResult(
        "large",
        f"large: reference {n}x{d}, current {n}x{d} (N(0,1); current[:, :{d // 2}] += 0.2)",
    )
    names = feature_names(d)
    c = result.contenders

    progress("Driftline large: KS")
    c["ks reference fit (once)"] = measure(
        lambda: detectors.SortedReference.fit(reference), repeat, note="SortedReference.fit"
    )
    ref = detectors.SortedReference.fit(reference)
    c["ks exact (prepared ref)"] = measure(
        lambda: detectors.ks_2samp(ref, current),
        repeat,
        note="ks_2samp(SortedReference, current), method='auto' -> Stephens p-value at this size",
    )
    c["ks exact + scipy asymp p"] = measure(
        lambda: detectors.ks_2samp(ref, current, method="asymp"),
        repeat,
        note="same, method='asymp': p-values identical to scipy's asymp (kstwo.sf)",
    )
    c["ks exact (raw arrays)"] = measure(
        lambda: detectors.ks_2samp(reference, current),
        repeat,
        note="ks_2samp(reference, current): includes sorting the reference",
    )
    progress("Driftline large: PSI, Wasserstein, full report")
    c["psi"] = measure(
        lambda: detectors.psi(reference, current),
        repeat,
        note="psi(reference, current), default 10 quantile bins fitted on the reference per call",
    )
    c["wasserstein"] = measure(
        lambda: detectors.wasserstein(ref, current), repeat, note="wasserstein(prepared ref)"
    )

    def full_report() -> None:
        prepared = detectors.SortedReference.fit(reference)
        detectors.ks_2samp(prepared, current)
        detectors.wasserstein(prepared, current)
        detectors.psi(reference, current)

    c["full report (KS+PSI+Wasserstein)"] = measure(
        full_report,
        repeat,
        note="SortedReference.fit + ks_2samp + wasserstein (same prepared ref) + psi, all features",
    )
    progress("Driftline large: sketch path")
    c["sketch profile fit (once)"] = measure(
        lambda: detectors.ReferenceProfile.fit(reference, numeric=names),
        repeat,
        note="ReferenceProfile.fit(numpy reference, numeric=f0..): 10 coarse + 1000 fine bins",
    )
    profile = detectors.ReferenceProfile.fit(reference, numeric=names)
    current_frame = frame(current, names)

    def sketch_path() -> detectors.WindowSketch:
        sketch = detectors.WindowSketch.empty(profile).update(current_frame)
        detectors.sketch_ks(sketch)
        detectors.sketch_psi(sketch)
        detectors.sketch_wasserstein(sketch)
        return sketch

    c["sketch path (update+KS+PSI+W)"] = measure(
        sketch_path,
        repeat,
        note="WindowSketch.empty(profile).update(polars frame built outside the clock) "
        "+ sketch_ks + sketch_psi + sketch_wasserstein",
    )

    result.peers = run_peers(path, "large", repeat)
    ks_prepared, ks_raw = "ks exact (prepared ref)", "ks exact (raw arrays)"
    full = "full report (KS+PSI+Wasserstein)"
    result.comparisons = compare(
        result,
        [
            Versus("scipy_ks_loop_asymp", ks_prepared, 3),
            Versus("scipy_ks_loop_auto", ks_prepared, 3),
            Versus("scipy_ks_loop_asymp", "ks exact + scipy asymp p"),
            Versus("evidently_ks_loop", ks_prepared),
            Versus("alibi_ksdrift", ks_prepared),
            Versus("alibi_ksdrift", ks_raw),
            Versus("alibi_ksdrift_predict", ks_prepared),
            Versus("nannyml_univariate", ks_prepared),
            Versus("nannyml_univariate", ks_raw),
            Versus("nannyml_univariate_calculate", ks_prepared),
            Versus("evidently_psi_loop", "psi", 5),
            Versus("scipy_wasserstein_loop", "wasserstein"),
            Versus("evidently_report_ks", full, 50),
            Versus("evidently_report_psi", full, 50),
            Versus("evidently_report_ks", "sketch path (update+KS+PSI+W)"),
        ],
    )

    exact = detectors.ks_2samp(ref, current)
    asymp = detectors.ks_2samp(ref, current, method="asymp")
    stat = [float(v) for v in exact.statistic]
    checks = result.checks
    for peer in ("scipy_ks_loop_asymp", "scipy_ks_loop_auto"):
        theirs = peer_sample(result.peers, peer, "statistic")
        checks.append(check_close(f"KS statistic == {peer} (scipy)", stat, theirs, 1e-12))
    alibi = peer_sample(result.peers, "alibi_ksdrift", "distance")
    checks.append(check_close("KS statistic == alibi (float32 output)", stat, alibi, 1e-6))
    evidently_p = peer_sample(result.peers, "evidently_ks_loop", "drift_score")
    asymp_p = np.asarray(asymp.pvalue, dtype=np.float64).tolist()
    checks.append(
        check_close("asymp p-value == evidently (scipy auto)", asymp_p, evidently_p, 1e-12)
    )
    w = [float(v) for v in detectors.wasserstein(ref, current).statistic]
    checks.append(
        check_close(
            "Wasserstein == scipy",
            w,
            peer_sample(result.peers, "scipy_wasserstein_loop", "distance"),
            1e-12,
        )
    )
    sketch = sketch_path()
    sketch_ks = detectors.sketch_ks(sketch)
    assert sketch_ks.error_bound is not None
    gap = np.abs(sketch_ks.statistic - exact.statistic) - sketch_ks.error_bound
    checks.append(
        Check(
            "sketch KS within its error_bound of the exact KS",
            bool(np.all(gap <= 1e-12)),
            f"all {d} features; max |sketch - exact| = "
            f"{float(np.max(np.abs(sketch_ks.statistic - exact.statistic))):.2e}, "
            f"largest bound = {float(np.max(sketch_ks.error_bound)):.2e}",
        )
    )
    psi_diff = np.abs(
        detectors.sketch_psi(sketch).statistic - detectors.psi(reference, current).statistic
    )
    checks.append(
        Check(
            "sketch PSI == psi(reference, current)",
            bool(np.max(psi_diff) <= 1e-12),
            f"all {d} features, max |diff| = {float(np.max(psi_diff)):.2e}",
        )
    )
    return result


def case_streaming(shapes: Shapes, repeat: int, peer_windows: int, suffix: str) -> CaseResult:
    n, d = shapes.stream_reference_rows, shapes.stream_features
    count, k = shapes.windows, shapes.window_rows
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(n, d))
    windows = rng.normal(size=(count, k, d))
    windows[count // 2 :, :, : d // 2] += 0.3
    peer_windows = max(1, min(peer_windows, count))
    picked = np.unique(np.linspace(0, count - 1, peer_windows).round().astype(np.int64))
    peer_windows = len(picked)
    path = DATA / f"streaming{suffix}-peers{peer_windows}.npz"
    np.savez(path, reference=reference, windows=windows[picked])
    result = CaseResult(
        "streaming",
        f"streaming: reference {n}x{d}, {count} windows of {k}x{d} "
        f"(windows >= {count // 2} shifted +0.3 on features 0..{d // 2 - 1})",
    )
    result.extra = {"windows": count, "peer_windows": peer_windows, "peer_window_index": []}
    result.extra["peer_window_index"] = [int(i) for i in picked]
    names = feature_names(d)
    c = result.contenders
    few = windows[:5]

    def exact_setup() -> tuple[detectors.SortedReference, Any, NDArray[np.int64]]:
        prepared = detectors.SortedReference.fit(reference)
        binning = quantile_binning(reference, 10, by_value_up_to=10)
        return prepared, binning, bin_counts(reference, binning)[0]

    progress("Driftline streaming: exact path")
    c["exact set-up (once)"] = measure(
        exact_setup,
        repeat,
        note="SortedReference.fit + quantile_binning(reference, 10, by_value_up_to=10) "
        "+ reference bin counts",
    )
    ref, binning, ref_counts = exact_setup()

    def ks_loop(batch: Any) -> None:
        for window in batch:
            detectors.ks_2samp(ref, window)

    def psi_loop(batch: Any) -> None:
        for window in batch:
            psi_from_counts(ref_counts, bin_counts(window, binning)[0])

    def exact_loop(batch: Any) -> None:
        for window in batch:
            detectors.ks_2samp(ref, window)
            psi_from_counts(ref_counts, bin_counts(window, binning)[0])

    c["exact KS only"] = measure(
        lambda: ks_loop(windows),
        repeat,
        warmup=lambda: ks_loop(few),
        note="ks_2samp(prepared ref, window) per window ('auto' -> Stephens p at this size)",
    )
    c["PSI only (bins fitted once)"] = measure(
        lambda: psi_loop(windows),
        repeat,
        warmup=lambda: psi_loop(few),
        note="bin_counts(window, reference binning) + psi_from_counts per window; "
        "equal to psi(reference, window)",
    )
    c["exact path (KS + PSI)"] = measure(
        lambda: exact_loop(windows),
        repeat,
        warmup=lambda: exact_loop(few),
        note="the two above in one loop: ks_2samp + PSI over reference-fitted bins",
    )
    refit = windows[: shapes.psi_refit_windows]
    c["PSI psi(reference, window)"] = measure(
        lambda: [detectors.psi(reference, w) for w in refit],
        repeat,
        note=f"refits the reference bins every window; measured on {len(refit)} windows, "
        f"scaled x{count / len(refit):g} (slower variant, not used in the ratios)",
        scale=count / len(refit),
    )

    progress("Driftline streaming: sketch path")
    c["sketch profile fit (once)"] = measure(
        lambda: detectors.ReferenceProfile.fit(reference, numeric=names), repeat
    )
    profile = detectors.ReferenceProfile.fit(reference, numeric=names)
    frames = [frame(w, names) for w in windows]

    def sketch_loop(batch: Sequence[pl.DataFrame]) -> None:
        for window in batch:
            sketch = detectors.WindowSketch.empty(profile).update(window)
            detectors.sketch_ks(sketch)
            detectors.sketch_psi(sketch)

    c["sketch path (update+KS+PSI)"] = measure(
        lambda: sketch_loop(frames),
        repeat,
        warmup=lambda: sketch_loop(frames[:5]),
        note="WindowSketch.empty(profile).update(polars frame built outside the clock) "
        "+ sketch_ks + sketch_psi per window",
    )

    result.peers = run_peers(path, "streaming", repeat, peer_windows)
    measured = int(result.peers["results"].get("scipy_ks_loop_asymp", {}).get("windows", 0))
    if measured and measured != peer_windows:
        raise SystemExit(f"run_peers measured {measured} windows, expected {peer_windows}")
    scale = count / peer_windows
    result.extra["peer_scale"] = scale
    exact, sketch = "exact path (KS + PSI)", "sketch path (update+KS+PSI)"
    versus = []
    for peer in ("scipy_ks_loop_asymp", "scipy_ks_loop_auto", "evidently_ks_loop"):
        versus += [Versus(peer, "exact KS only", 50), Versus(peer, exact, 50)]
        versus.append(Versus(peer, sketch, 50))
    versus += [
        Versus("evidently_psi_loop", "PSI only (bins fitted once)", 50),
        Versus("evidently_psi_loop", exact, 50),
        Versus("evidently_psi_loop", sketch, 50),
    ]
    result.comparisons = compare(result, versus, peer_scale=scale)

    first = windows[picked[0]]
    stat = [float(v) for v in detectors.ks_2samp(ref, first).statistic]
    for peer in ("scipy_ks_loop_asymp", "scipy_ks_loop_auto"):
        theirs = peer_sample(result.peers, peer, "statistic")
        result.checks.append(
            check_close(f"KS statistic == {peer} (scipy), window 0", stat, theirs, 1e-12)
        )
    once = psi_from_counts(ref_counts, bin_counts(first, binning)[0])
    diff = float(np.max(np.abs(once - detectors.psi(reference, first).statistic)))
    result.checks.append(
        Check(
            "PSI over bins fitted once == psi(reference, window), window 0",
            diff <= 1e-12,
            f"all {d} features, max |diff| = {diff:.2e}",
        )
    )
    return result


def case_ingest(shapes: Shapes, repeat: int, suffix: str) -> CaseResult:
    n, d, rows = shapes.ingest_reference_rows, shapes.ingest_features, shapes.ingest_rows
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(n, d))
    batch = rng.normal(size=(rows, d))
    values = rng.normal(size=shapes.stream_values)
    values[len(values) // 2 :] += 0.5
    path = DATA / f"ingest{suffix}.npz"
    np.savez(path, values=values)
    result = CaseResult(
        "ingest",
        f"ingest: profile of {d} numeric features fitted on {n} rows; batches of {rows}x{d} "
        f"({rows * d} values); River fed {len(values)} values one by one (mean +0.5 from "
        "the midpoint)",
    )
    names = feature_names(d)
    c = result.contenders
    progress("Driftline ingest")
    c["profile fit (once)"] = measure(
        lambda: detectors.ReferenceProfile.fit(reference, numeric=names), repeat
    )
    profile = detectors.ReferenceProfile.fit(reference, numeric=names)
    batch_frame = frame(batch, names)
    views = {name: batch[:, j] for j, name in enumerate(names)}
    feature_major = np.ascontiguousarray(batch.T)
    contiguous = {name: feature_major[j] for j, name in enumerate(names)}
    c["WindowSketch.update(polars DataFrame)"] = measure(
        lambda: detectors.WindowSketch.empty(profile).update(batch_frame),
        repeat,
        note="fresh WindowSketch per batch; DataFrame built outside the clock",
    )
    c["WindowSketch.update(dict of numpy columns)"] = measure(
        lambda: detectors.WindowSketch.empty(profile).update(views),
        repeat,
        note=f"{{name: array[:, j]}} views of a row-major ({rows}, {d}) array; "
        "update builds the polars frame inside the clock",
    )
    c["WindowSketch.update(dict, contiguous columns)"] = measure(
        lambda: detectors.WindowSketch.empty(profile).update(contiguous),
        repeat,
        note="same from a feature-major (d, rows) array: each column contiguous",
    )
    sketch = detectors.WindowSketch.empty(profile).update(batch_frame)
    result.checks.append(
        Check(
            "sketch counted every value",
            bool(np.all(sketch.n == rows)) and sketch.rows == rows,
            f"{rows} rows x {d} features",
        )
    )
    result.peers = run_peers(path, "ingest", repeat)
    per_batch = rows * d
    rates = {name: per_batch / t.median for name, t in c.items() if "update" in name}
    result.extra["driftline_values_per_second"] = rates
    peer_rates: dict[str, float] = {}
    for peer in ("river_adwin", "river_page_hinkley", "river_kswin"):
        seconds = peer_seconds(result.peers, peer)
        if seconds is not None:
            count = int(result.peers["results"][peer].get("values", len(values)))
            peer_rates[peer] = count / statistics.median(seconds)
    result.extra["peer_values_per_second"] = peer_rates
    return result


def print_ingest(result: CaseResult, shapes: Shapes) -> None:
    per_batch = shapes.ingest_rows * shapes.ingest_features
    rates: dict[str, float] = result.extra["driftline_values_per_second"]
    rows = []
    for name, t in result.contenders.items():
        rate = fmt_rate(rates[name]) if name in rates else ""
        if name in rates:
            target = "met" if rates[name] >= 50e6 else "NOT MET"
            rate_cells = [rate, "" if result.quick else f">= 50 M/s: {target}"]
        else:
            rate_cells = ["", ""]
        rows.append([name, fmt_seconds(t.median), f"{t.cpu_per_wall:.2f}", *rate_cells])
    print(f"  Driftline: {per_batch} values per batch; values/s = values / median")
    table(["Driftline contender", "median s", "cpu/wall", "values/s", "issue target"], rows)
    for name, t in result.contenders.items():
        if t.note:
            print(f"    * {name}: {t.note}")
    print()
    labels = list(rates)
    peer_rows = []
    for peer in ("river_adwin", "river_page_hinkley", "river_kswin"):
        seconds = peer_seconds(result.peers, peer)
        if seconds is None:
            error = result.peers.get("results", {}).get(peer, {}).get("error", "not run")
            peer_rows.append([peer, "-", "-", f"error: {error[:50]}", *["-"] * len(labels)])
            continue
        rate = result.extra["peer_values_per_second"][peer]
        count = result.peers["results"][peer].get("values", "?")
        ratios = [f"{rates[label] / rate:.0f}x" for label in labels]
        peer_rows.append(
            [peer, str(count), fmt_seconds(statistics.median(seconds)), fmt_rate(rate)]
        )
        peer_rows[-1] += ratios
    short = ["x polars", "x dict views", "x dict contig."]
    table(["peer", "values", "median s", "values/s", *short[: len(labels)]], peer_rows)
    print("    ratios = Driftline values/s (polars / dict views / dict contiguous) / peer values/s")


# ----------------------------------------------------------------------------- main


def environment() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "polars": pl.__version__,
        "polars_thread_pool": pl.thread_pool_size(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "loadavg_start": list(os.getloadavg()),
        "env": {
            k: os.environ.get(k)
            for k in (
                "OPENBLAS_NUM_THREADS",
                "OMP_NUM_THREADS",
                "MKL_NUM_THREADS",
                "POLARS_MAX_THREADS",
            )
        },
    }
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        info["threadpools"] = "threadpoolctl not installed"
    else:
        info["threadpools"] = [
            {k: p.get(k) for k in ("user_api", "internal_api", "version", "num_threads")}
            for p in threadpool_info()
        ]
    return info


def print_environment(info: dict[str, Any]) -> None:
    print("Environment")
    print(f"  python {info['python']} on {info['platform']}")
    print(
        f"  numpy {info['numpy']}, scipy {info['scipy']}, polars {info['polars']} "
        f"(thread pool {info['polars_thread_pool']})"
    )
    print(
        f"  CPUs: os.cpu_count() = {info['cpu_count']}, affinity = {info['cpu_affinity']}; "
        f"load average at start {', '.join(f'{v:.2f}' for v in info['loadavg_start'])}"
    )
    env = ", ".join(f"{k}={v if v is not None else 'unset'}" for k, v in info["env"].items())
    print(f"  env: {env}")
    pools = info["threadpools"]
    if isinstance(pools, str):
        print(f"  threadpools: {pools}")
    else:
        for p in pools:
            print(
                f"  threadpool: {p['user_api']}/{p['internal_api']} {p['version']}, "
                f"{p['num_threads']} threads"
            )


def print_case(result: CaseResult, shapes: Shapes, repeat: int) -> None:
    print()
    print(f"== {result.title}; medians of {repeat} runs ==")
    if result.quick:
        print("  --quick shapes: a smoke run; the issue's targets are assessed on full runs only")
    versions = result.peers.get("versions", {})
    print("  peers: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    if result.name == "ingest":
        print_ingest(result, shapes)
    else:
        per_window = shapes.windows if result.name == "streaming" else None
        print_contenders(result, per_window)
        print()
        if result.name == "streaming":
            measured, scale = result.extra["peer_windows"], result.extra["peer_scale"]
            print(
                f"  peers measured on {measured} windows (evenly spaced over the {shapes.windows}),"
                f" scaled x{scale:g} to {shapes.windows} windows"
            )
            print_comparisons(result, f"s (measured on {measured} windows, scaled)")
        else:
            print_comparisons(result)
        print("    ratio = peer median / Driftline median (x times faster)")
    if result.checks:
        print()
        print_checks(result.checks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=[*CASES, "all"], default="all")
    parser.add_argument("--repeat", type=int, default=None, help="timed runs (default 3; 1 quick)")
    parser.add_argument(
        "--peer-windows", type=int, default=None, help="streaming windows the peers run (100)"
    )
    parser.add_argument("--quick", action="store_true", help="small shapes: a smoke run")
    parser.add_argument(
        "--no-setup", action="store_true", help="fail instead of building a missing peer venv"
    )
    args = parser.parse_args()
    shapes = QUICK if args.quick else FULL
    repeat = args.repeat if args.repeat is not None else (1 if args.quick else 3)
    if repeat < 1:
        parser.error("--repeat must be >= 1")
    peer_windows = args.peer_windows if args.peer_windows is not None else shapes.peer_windows
    cases = list(CASES) if args.case == "all" else [args.case]
    suffix = "-quick" if args.quick else ""

    ensure_peer_venv(args.no_setup)
    DATA.mkdir(parents=True, exist_ok=True)
    info = environment()
    print_environment(info)
    sys.stdout.flush()

    results: dict[str, CaseResult] = {}
    started = time.perf_counter()
    for case in cases:
        progress(f"case {case}")
        if case == "large":
            results[case] = case_large(shapes, repeat, suffix)
        elif case == "streaming":
            results[case] = case_streaming(shapes, repeat, peer_windows, suffix)
        else:
            results[case] = case_ingest(shapes, repeat, suffix)
        if args.quick:
            results[case].quick = True
            for row in results[case].comparisons:
                row.pop("target_met", None)
        print_case(results[case], shapes, repeat)
        sys.stdout.flush()

    info["loadavg_end"] = list(os.getloadavg())
    elapsed = time.perf_counter() - started
    out = RESULTS if not args.quick else DATA / "detectors-results-quick.json"
    payload = {
        "arguments": {"cases": cases, "repeat": repeat, "quick": args.quick},
        "shapes": vars(shapes),
        "environment": info,
        "elapsed_seconds": elapsed,
        "cases": {name: r.to_dict() for name, r in results.items()},
    }
    out.write_text(json.dumps(payload, indent=1, default=float) + "\n")
    failed = [c for r in results.values() for c in r.checks if c.ok is False]
    print()
    print(
        f"done in {elapsed:.0f} s; load average at end "
        f"{', '.join(f'{v:.2f}' for v in info['loadavg_end'])}; results: {out.relative_to(REPO)}"
    )
    if failed:
        print(f"{len(failed)} correctness check(s) FAILED", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
