"""Time peer drift-detection libraries for benchmarks/detectors.py.

Runs inside the peer venv (benchmarks/.venv-peers, made by benchmarks/setup_peers.sh), which
holds libraries that pin numpy 1.x. The Driftline benchmark calls it by subprocess:

    benchmarks/.venv-peers/bin/python benchmarks/peers/run_peers.py \
        --data PATH.npz --case {large,streaming,ingest} --repeat N [--windows W]

Input arrays in the .npz (float64, any sizes):
    large      reference (n, d), current (m, d)
    streaming  reference (n, d), windows (w, k, d); only the first --windows W windows are used
    ingest     values (n,), fed one value at a time
    quality    reference (n, d), stream (m, d), chunk (), step (): detection quality, not
               speed: alarms before ``step`` are false, the first after it is the detection

Output: exactly one JSON object on stdout (anything the libraries print goes to stderr):
    {"case": ..., "versions": {package: version},
     "results": {peer: {"seconds": [...], "unit_note": "...", "sample": {...}}
                       | {"error": "..."}}}
Streaming results also carry "windows" (windows measured); ingest results carry "values".
Each time is time.perf_counter() around the peer's work only: imports, detector set-up named
in unit_note, column extraction and pandas construction happen before the clock starts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from importlib import metadata
from typing import Any

os.environ.setdefault("DO_NOT_TRACK", "1")  # Evidently telemetry (no network here anyway)
os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")  # NannyML usage logging

import numpy as np
import pandas as pd

PACKAGES = ["numpy", "pandas", "scipy", "evidently", "alibi-detect", "river", "nannyml"]
Peer = Callable[[], dict[str, Any]]  # runs one peer `repeat` times, returns its result
Peers = dict[str, tuple[str, Peer]]  # peer name -> (unit_note, runner)


def timed(repeat: int, work: Callable[[], Any], sample: Callable[[Any], Any]) -> dict[str, Any]:
    """Run work() repeat times under the clock; summarise the last output (untimed)."""
    seconds, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = work()
        seconds.append(time.perf_counter() - start)
    return {"seconds": seconds, "sample": sample(out)}


def first3(values: Any) -> list[float]:
    return [float(v) for v in list(values)[:3]]


def evidently_api() -> tuple[Any, ...]:
    """Return (ColumnType, ks_stat_test, psi_stat_test, Report, DataDriftPreset)."""
    try:  # evidently >= 0.7 keeps the old API under evidently.legacy
        from evidently.legacy.calculations.stattests import ks_stat_test, psi_stat_test
        from evidently.legacy.core import ColumnType
        from evidently.legacy.metric_preset import DataDriftPreset
        from evidently.legacy.report import Report
    except ImportError:
        from evidently.calculations.stattests import ks_stat_test, psi_stat_test
        from evidently.core import ColumnType
        from evidently.metric_preset import DataDriftPreset
        from evidently.report import Report
    return ColumnType, ks_stat_test, psi_stat_test, Report, DataDriftPreset


def evidently_loop(test_name: str, pairs: list[tuple[pd.Series, pd.Series]]) -> Any:
    column_type, ks, psi, _, _ = evidently_api()
    test = {"ks": ks, "psi": psi}[test_name]
    return lambda: [test(r, c, column_type.Numerical, None).drift_score for r, c in pairs]


def scipy_ks_loop(pairs: list[tuple[np.ndarray, np.ndarray]], method: str) -> Any:
    from scipy.stats import ks_2samp

    return lambda: [ks_2samp(r, c, method=method).statistic for r, c in pairs]


def large_peers(data: Any, repeat: int) -> Peers:
    ref, cur = data["reference"], data["current"]
    names = [f"f{j}" for j in range(ref.shape[1])]
    ref_df, cur_df = pd.DataFrame(ref, columns=names), pd.DataFrame(cur, columns=names)
    cols = list(zip(np.ascontiguousarray(ref.T), np.ascontiguousarray(cur.T), strict=True))
    series = [(ref_df[n], cur_df[n]) for n in names]
    per_col = "one call per column; columns pre-extracted (contiguous) outside the clock"
    auto = "exact" if max(len(ref), len(cur)) <= 10_000 else "asymp"

    def evidently_report(stattest: str) -> dict[str, Any]:
        *_, report_cls, preset = evidently_api()

        def work() -> Any:
            report = report_cls(metrics=[preset(stattest=stattest)])
            report.run(reference_data=ref_df, current_data=cur_df)
            return report

        def sample(report: Any) -> Any:
            table = report.as_dict()["metrics"][1]["result"]["drift_by_columns"]
            return {"drift_score": [table[n]["drift_score"] for n in names[:3]]}

        return timed(repeat, work, sample)

    def alibi(construct_in_clock: bool) -> dict[str, Any]:
        from alibi_detect.cd import KSDrift

        detector = KSDrift(ref, p_val=0.05)

        def work() -> Any:
            return (KSDrift(ref, p_val=0.05) if construct_in_clock else detector).predict(cur)

        def sample(pred: Any) -> Any:
            return {key: first3(pred["data"][key]) for key in ("distance", "p_val")}

        return timed(repeat, work, sample)

    def nannyml(fit_in_clock: bool) -> dict[str, Any]:
        import nannyml as nml

        def make() -> Any:
            return nml.UnivariateDriftCalculator(
                column_names=names, continuous_methods=["kolmogorov_smirnov"], chunk_number=1
            )

        fitted = make().fit(ref_df)

        def work() -> Any:
            return (make().fit(ref_df) if fit_in_clock else fitted).calculate(cur_df)

        def sample(result: Any) -> Any:
            row = result.filter(period="analysis").to_df().iloc[-1]
            return {
                "statistic": [float(row[(n, "kolmogorov_smirnov", "value")]) for n in names[:3]]
            }

        return timed(repeat, work, sample)

    def wasserstein() -> dict[str, Any]:
        from scipy.stats import wasserstein_distance

        return timed(
            repeat,
            lambda: [wasserstein_distance(r, c) for r, c in cols],
            lambda out: {"distance": first3(out)},
        )

    def ks_sample(out: list[float]) -> Any:
        return {"statistic": first3(out)}

    def ev_sample(out: list[float]) -> Any:
        return {"drift_score": first3(out)}

    return {
        "scipy_ks_loop_asymp": (
            f"ks_2samp(method='asymp'), {per_col}",
            lambda: timed(repeat, scipy_ks_loop(cols, "asymp"), ks_sample),
        ),
        "scipy_ks_loop_auto": (
            f"ks_2samp default method='auto' (resolves to '{auto}' at this size), {per_col}",
            lambda: timed(repeat, scipy_ks_loop(cols, "auto"), ks_sample),
        ),
        "evidently_ks_loop": (
            "evidently ks_stat_test per column on pandas Series built outside the clock; "
            "sample is p-values",
            lambda: timed(repeat, evidently_loop("ks", series), ev_sample),
        ),
        "evidently_psi_loop": (
            "evidently psi_stat_test (30 bins) per column on pandas Series built outside the clock",
            lambda: timed(repeat, evidently_loop("psi", series), ev_sample),
        ),
        "evidently_report_ks": (
            "Report([DataDriftPreset(stattest='ks')]).run on DataFrames built outside the clock; "
            "includes Evidently's per-column histograms for the report, not rendering/as_dict",
            lambda: evidently_report("ks"),
        ),
        "evidently_report_psi": (
            "Report([DataDriftPreset(stattest='psi')]).run, same as evidently_report_ks",
            lambda: evidently_report("psi"),
        ),
        "alibi_ksdrift": (
            "KSDrift(reference, p_val=0.05) construction + predict(current)",
            lambda: alibi(construct_in_clock=True),
        ),
        "alibi_ksdrift_predict": (
            "KSDrift.predict(current) only; detector constructed outside the clock",
            lambda: alibi(construct_in_clock=False),
        ),
        "nannyml_univariate": (
            "UnivariateDriftCalculator(kolmogorov_smirnov, chunk_number=1) construction + "
            "fit(reference) + calculate(current); NannyML's default KS switches to a 10k-bin "
            "estimate when reference has >= 10000 rows; DataFrames built outside the clock",
            lambda: nannyml(fit_in_clock=True),
        ),
        "nannyml_univariate_calculate": (
            "calculate(current) only on a calculator fitted outside the clock",
            lambda: nannyml(fit_in_clock=False),
        ),
        "scipy_wasserstein_loop": (f"wasserstein_distance, {per_col}", wasserstein),
    }


def streaming_peers(data: Any, repeat: int, windows: int | None) -> Peers:
    ref = np.ascontiguousarray(data["reference"].T)  # (d, n)
    win = np.ascontiguousarray(data["windows"][:windows].transpose(0, 2, 1))  # (w, d, k)
    pairs = [(ref[f], w[f]) for w in win for f in range(ref.shape[0])]
    ref_s = [pd.Series(col) for col in ref]
    series = [(ref_s[f], pd.Series(w[f])) for w in win for f in range(ref.shape[0])]
    auto = "exact" if max(ref.shape[1], win.shape[2]) <= 10_000 else "asymp"
    loop = f"looping over {len(win)} windows x {ref.shape[0]} features; sample is window 0"

    def result(work: Callable[[], Any], key: str) -> Peer:
        return lambda: timed(repeat, work(), lambda out: {key: first3(out)}) | {"windows": len(win)}

    return {
        "scipy_ks_loop_asymp": (
            f"ks_2samp(method='asymp') {loop}",
            result(lambda: scipy_ks_loop(pairs, "asymp"), "statistic"),
        ),
        "scipy_ks_loop_auto": (
            f"ks_2samp default 'auto' (resolves to '{auto}' at this size) {loop}",
            result(lambda: scipy_ks_loop(pairs, "auto"), "statistic"),
        ),
        "evidently_ks_loop": (
            f"evidently ks_stat_test (scipy 'auto') {loop}; Series built outside the clock",
            result(lambda: evidently_loop("ks", series), "drift_score"),
        ),
        "evidently_psi_loop": (
            f"evidently psi_stat_test {loop}; Series built outside the clock",
            result(lambda: evidently_loop("psi", series), "drift_score"),
        ),
    }


def ingest_peers(data: Any, repeat: int) -> Peers:
    values = [float(v) for v in data["values"]]  # python floats, as a stream would deliver

    def river(detector_name: str, limit: int | None = None, **kwargs: Any) -> Peer:
        stream = values[:limit]

        def run() -> dict[str, Any]:
            from river import drift

            def work() -> list[int]:
                detector, hits = getattr(drift, detector_name)(**kwargs), []
                for i, x in enumerate(stream):
                    detector.update(x)
                    if detector.drift_detected:
                        hits.append(i)
                return hits

            def sample(hits: list[int]) -> Any:
                return {"drifts": len(hits), "first_drifts": hits[:3]}

            return timed(repeat, work, sample) | {"values": len(stream)}

        return run

    note = "whole stream, one update(x) per value incl. drift_detected check; values/s = n/s"
    return {
        "river_adwin": (f"ADWIN(), {note}", river("ADWIN")),
        "river_page_hinkley": (f"PageHinkley(), {note}", river("PageHinkley")),
        # KSWIN runs a KS test per value (~3k values/s): its first 10,000 values suffice
        "river_kswin": (
            f"KSWIN(seed=0), first 10,000 values, {note}",
            river("KSWIN", 10_000, seed=0),
        ),
    }


def quality_peers(data: Any) -> Peers:
    """False alarms on the stationary part of a stream and the delay to the first true one."""
    ref, stream = data["reference"], data["stream"]
    chunk, step = int(data["chunk"]), int(data["step"])
    names = [f"f{j}" for j in range(ref.shape[1])]
    ref_df = pd.DataFrame(ref, columns=names)
    stream_df = pd.DataFrame(stream, columns=names)

    def nannyml(method: str) -> dict[str, Any]:
        import nannyml as nml

        start = time.perf_counter()
        calc = nml.UnivariateDriftCalculator(
            column_names=names, continuous_methods=[method], chunk_size=chunk
        ).fit(ref_df)
        table = calc.calculate(stream_df).filter(period="analysis").to_df()
        seconds = time.perf_counter() - start
        alerts = np.column_stack([table[(n, method, "alert")].to_numpy() for n in names])
        before = step // chunk  # chunks entirely before the step
        flagged = alerts[:before].astype(bool)
        after = alerts[before:].any(axis=1)
        first = int(np.argmax(after)) + 1 if after.any() else None
        return {
            "seconds": [seconds],
            "false_share": float(flagged.mean()) if flagged.size else None,
            "detection_window": first,
        }

    def river(detector_name: str, limit: int | None = None, **kwargs: Any) -> dict[str, Any]:
        from river import drift

        start = time.perf_counter()
        false_alarms, delays = 0, []
        end = len(stream) if limit is None else min(len(stream), step + limit)
        begin = 0 if limit is None else max(0, step - limit)
        for j in range(stream.shape[1]):
            detector = getattr(drift, detector_name)(**kwargs)
            for value in ref[:, j].tolist():  # warm up on the reference, as a monitor would
                detector.update(value)
            for i, value in enumerate(stream[begin:end, j].tolist(), start=begin):
                detector.update(value)
                if detector.drift_detected:
                    if i < step:
                        false_alarms += 1
                    else:
                        delays.append(i - step)
                        break
        seconds = time.perf_counter() - start
        return {
            "seconds": [seconds],
            "false_alarms": false_alarms,
            "events_examined_before_step": (step - begin) * stream.shape[1],
            "detection_delay_events": min(delays) if delays else None,
        }

    note = "windows (NannyML chunks) of the same size as Driftline's; default thresholds"
    return {
        "nannyml_ks": (f"UnivariateDriftCalculator(kolmogorov_smirnov), {note}",
                       lambda: nannyml("kolmogorov_smirnov")),
        "nannyml_jensen_shannon": (f"UnivariateDriftCalculator(jensen_shannon), {note}",
                                   lambda: nannyml("jensen_shannon")),
        "river_adwin": ("ADWIN() per feature, warmed on the reference", lambda: river("ADWIN")),
        "river_page_hinkley": ("PageHinkley() per feature, warmed on the reference",
                               lambda: river("PageHinkley")),
        "river_kswin": ("KSWIN(seed=0) per feature on 2,000 events each side of the step",
                        lambda: river("KSWIN", 2_000, seed=0)),
    }  # fmt: skip


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument(
        "--case", required=True, choices=["large", "streaming", "ingest", "quality"]
    )
    parser.add_argument("--repeat", type=int, default=1, choices=range(1, 1001), metavar="N")
    parser.add_argument("--windows", type=int, default=None, help="streaming: windows to use")
    args = parser.parse_args()

    stdout = os.fdopen(os.dup(1), "w")  # keep the real stdout for the JSON line only
    os.dup2(2, 1)  # everything else written to fd 1 (library prints, C code) goes to stderr

    data = np.load(args.data)
    if args.case == "large":
        peers = large_peers(data, args.repeat)
    elif args.case == "streaming":
        peers = streaming_peers(data, args.repeat, args.windows)
    elif args.case == "quality":
        peers = quality_peers(data)
    else:
        peers = ingest_peers(data, args.repeat)

    results: dict[str, Any] = {}
    for name, (note, run) in peers.items():
        print(f"run_peers: {args.case} {name} ...", file=sys.stderr, flush=True)
        try:
            results[name] = run() | {"unit_note": note}
        except Exception as exc:  # a failing peer is reported, the others still run
            traceback.print_exc(file=sys.stderr)
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}

    json.dump({"case": args.case, "versions": versions(), "results": results}, stdout)
    stdout.write("\n")
    stdout.flush()


if __name__ == "__main__":
    main()
