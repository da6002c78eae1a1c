import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from driftline.cli import app
from engine.deadletter import MemoryDeadLetters
from engine.pipeline import Pipeline
from engine.replay import (
    ReplayColumns,
    build_monitor,
    read_table,
    replay,
    split_names,
    window_spec,
)
from engine.sinks import FanOut, MemorySink, MetricsStoreSink
from engine.writes import write_policy
from storage.clickhouse.client import connect
from storage.clickhouse.migrations import MigrationParams, migrate

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
REFERENCE = DATA / "car_loan_reference.parquet"
ANALYSIS = DATA / "car_loan_analysis.parquet"
COLUMNS = ReplayColumns(timestamp="timestamp", id="id", prediction="y_pred", label="repaid")
DRIFTING = {"car_value", "loan_length", "salary_range", "repaid_loan_on_prev_car", "y_pred_proba"}
STEP = "2019-03-31T03:00:00Z"  # analysis row 25,000


def run(sink, window="5000"):
    reference = read_table(REFERENCE)
    monitor = build_monitor(reference, COLUMNS, window=window_spec(window))
    pipeline = Pipeline(
        organization="acme",
        monitors=[monitor],
        sink=sink,
        dead_letters=MemoryDeadLetters(),
        writes=write_policy(),  # as `driftline replay`: the windows of a chunk in one write
    )
    replay(read_table(ANALYSIS), pipeline, monitor, COLUMNS)
    return monitor, pipeline


def test_the_known_drift_is_flagged_after_the_step_only_and_controls_stay_quiet():
    sink = MemorySink()
    monitor, _ = run(sink)
    assert set(monitor.categorical) == {
        "salary_range",
        "repaid_loan_on_prev_car",
        "size_of_downpayment",
    }
    windows = [r for r in sink.results if r.phase == "window"]
    assert len(windows) == 10
    before, after = windows[:5], windows[5:]
    assert all(w.drifted_features == () for w in before)
    assert after[0].report_lines()[0]["window_start"] == STEP
    for window in after:
        assert set(window.drifted_features) == DRIFTING
    accuracy = [dict((m, v) for m, v, _ in w.performance)["accuracy"] for w in windows]
    assert min(accuracy[:5]) > 0.935
    assert max(accuracy[5:]) < 0.925


def test_time_windows_find_the_same_step():
    sink = MemorySink()
    run(sink, window="1w")
    flagged = [r for r in sink.results if r.drifted_features]
    assert flagged
    assert all(r.start_ms >= flagged[0].start_ms for r in sink.results if r.drifted_features)
    first = flagged[0].report_lines()[0]["window_start"]
    assert "2019-03-2" in first or "2019-03-3" in first


def test_results_land_in_the_metrics_store_once_even_when_replayed_twice(chdb_url):
    with connect(chdb_url) as client:
        migrate(client, MigrationParams(ttl_days=7300))
        for _ in range(2):
            run(FanOut([MetricsStoreSink(client, "acme"), MemorySink()]))
        rows = client.query_rows(
            "SELECT count(), countIf(drifted) FROM drift_results WHERE organization = {org:String}",
            {"org": "acme"},
        )
        windows = client.query_rows(
            "SELECT count() FROM window_aggregates WHERE organization = {org:String}",
            {"org": "acme"},
        )
    assert windows[0][0] == 10
    total, drifted = rows[0]
    assert total == 10 * 8 * 2  # 10 windows x 8 features x 2 statistics, written once
    assert drifted == 5 * 2 * len(DRIFTING)


def test_replay_command_writes_one_line_per_window_feature_and_statistic(
    tmp_path, chdb_url, monkeypatch
):
    monkeypatch.setenv("DRIFTLINE_CLICKHOUSE_URL", chdb_url)
    monkeypatch.setenv("DRIFTLINE_DATA_DIR", str(tmp_path))
    output = tmp_path / "results.jsonl"
    result = CliRunner().invoke(
        app,
        [
            "replay", str(ANALYSIS), "--reference", str(REFERENCE), "--window", "5000",
            "--prediction-column", "y_pred", "--label-column", "repaid", "--output", str(output),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{") :])
    assert summary["windows"] == 10
    assert summary["first_drift_window"] == STEP
    assert set(summary["drifted_features"]) == DRIFTING
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(lines) == 10 * 8 * 2
    first = lines[0]
    assert set(first) >= {
        "window_start", "window_end", "n", "feature", "statistic", "value", "p_value",
        "threshold", "drifted",
    }  # fmt: skip
    distances = [line for line in lines if line["statistic"] == "wasserstein_normed"]
    assert all(line["p_value"] is None for line in distances)


def test_replay_command_without_the_store_and_with_chosen_features(tmp_path):
    output = tmp_path / "out.jsonl"
    result = CliRunner().invoke(
        app,
        [
            "replay", str(ANALYSIS), "--reference", str(REFERENCE), "--window", "10000",
            "--features", "car_value,debt_to_income_ratio", "--no-store", "--output", str(output),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert {line["feature"] for line in lines} == {"car_value", "debt_to_income_ratio"}
    flagged = {line["feature"] for line in lines if line["drifted"]}
    assert flagged == {"car_value"}


def test_readers_and_helpers(tmp_path):
    frame = pl.DataFrame({"a": [1.0, 2.0], "t": ["2020-01-01T00:00:00Z"] * 2})
    frame.write_csv(tmp_path / "x.csv")
    frame.write_ndjson(tmp_path / "x.ndjson")
    assert read_table(tmp_path / "x.csv").height == 2
    assert read_table(tmp_path / "x.ndjson").height == 2
    with pytest.raises(ValueError, match="unknown format"):
        read_table(tmp_path / "x.xlsx")
    assert split_names(" a, b ,") == ("a", "b")
    assert split_names(None) is None
    assert window_spec("500").kind == "count"
    assert window_spec("2h").size_ms == 7_200_000
