"""`driftline profile build` on the shared car-loan data, and replay from the profile it wrote."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import polars as pl
import pytest
from typer.testing import CliRunner

from detectors import ReferenceProfile
from driftline.cli import app
from engine.monitor import load_monitors
from engine.replay import ReplayColumns, fit_reference, load_reference, read_table
from storage.clickhouse.client import connect

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REFERENCE = DATA / "car_loan_reference.parquet"
ANALYSIS = DATA / "car_loan_analysis.parquet"
NOT_FEATURES = ["--prediction-column", "y_pred", "--label-column", "repaid"]


def _build(tmp_path: Path, *extra: str) -> tuple[Path, str]:
    output = tmp_path / "profile.json"
    result = CliRunner().invoke(
        app, ["profile", "build", str(REFERENCE), "--output", str(output), *extra]
    )
    assert result.exit_code == 0, result.output
    return output, result.stdout


def _replay(tmp_path: Path, reference: Path, name: str, *extra: str) -> tuple[dict, list[str]]:
    """Replay the analysis file as organization ``name``; its summary and output lines."""
    output = tmp_path / f"{name}.jsonl"
    result = CliRunner().invoke(
        app,
        [
            "replay", str(ANALYSIS), "--reference", str(reference), "--window", "5000",
            "--organization", name, "--output", str(output), *extra,
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{") :])
    return summary, output.read_text().splitlines()


def _stored(chdb_url: str, organization: str) -> dict[str, list[list]]:
    """The organization's result rows, as JSON values (NaN latencies become null)."""
    with connect(chdb_url) as client:
        rows = {
            table: client.query_rows(
                f"SELECT * EXCEPT (organization, inserted_at) FROM {table} "
                "WHERE organization = {org:String} ORDER BY ALL",
                {"org": organization},
            )
            for table in ("window_aggregates", "drift_results", "performance_metrics")
        }
    return orjson.loads(orjson.dumps(rows, default=str))


@pytest.fixture
def store(chdb_url, tmp_path, monkeypatch):
    """Replays write to a fresh database of the session's chDB folder (2018-19 rows kept)."""
    monkeypatch.setenv("DRIFTLINE_CLICKHOUSE_URL", chdb_url)
    monkeypatch.setenv("DRIFTLINE_METRICS_TTL_DAYS", "7300")
    monkeypatch.setenv("DRIFTLINE_DATA_DIR", str(tmp_path))
    return chdb_url


def test_profile_build_writes_the_profile_replay_would_fit_and_summarises_each_feature(tmp_path):
    output, stdout = _build(tmp_path, *NOT_FEATURES)
    written = ReferenceProfile.from_dict(json.loads(output.read_text()))
    columns = ReplayColumns(prediction="y_pred", label="repaid")
    assert written.to_dict() == fit_reference(read_table(REFERENCE), columns).to_dict()
    assert written.numeric == (
        "car_value", "debt_to_income_ratio", "loan_length", "driver_tenure", "y_pred_proba",
    )  # fmt: skip
    assert written.categorical == ("salary_range", "repaid_loan_on_prev_car", "size_of_downpayment")
    assert "8 features (5 numeric, 3 categorical) from 50000 rows" in stdout
    lines = {line.split()[0]: line for line in stdout.splitlines()[1:]}
    assert set(lines) == set(written.numeric + written.categorical)
    assert "numeric      n=50000 missing=0 mean=14.47" in lines["loan_length"]
    assert "categories=4 top='0 - 20K €' 40%" in lines["salary_range"]
    # a monitors file can name it as its reference
    (tmp_path / "monitors.yaml").write_text("deployment: loans\nreference: profile.json\n")
    (monitor,) = load_monitors(tmp_path / "monitors.yaml")
    assert monitor.numeric == written.numeric


def test_replay_from_the_profile_gives_the_results_of_the_raw_reference(tmp_path, store):
    profile, _ = _build(tmp_path, *NOT_FEATURES)
    from_data = _replay(tmp_path, REFERENCE, "data", *NOT_FEATURES)
    from_profile = _replay(tmp_path, profile, "profile", *NOT_FEATURES)
    assert from_profile == from_data
    summary, lines = from_profile
    assert summary["first_drift_window"] == "2019-03-31T03:00:00Z"
    assert len(lines) == 10 * 8 * 2
    stored = _stored(store, "profile")
    assert stored == _stored(store, "data")
    # the label's classes came from the events: accuracy per window, as from the data
    accuracy = [row for row in stored["performance_metrics"] if row[3] == "accuracy"]
    assert len(accuracy) == 10


def test_a_profile_of_chosen_features_replays_as_the_data_with_those_features(tmp_path, store):
    chosen = "car_value,salary_range,driver_tenure"
    profile, _ = _build(tmp_path, "--features", chosen)
    assert json.loads(profile.read_text())["categorical"] == ["salary_range"]
    from_data = _replay(tmp_path, REFERENCE, "data", "--features", chosen)
    from_profile = _replay(tmp_path, profile, "profile")
    assert from_profile == from_data
    assert {json.loads(line)["feature"] for line in from_profile[1]} == set(chosen.split(","))
    # a profile's features can be narrowed at replay time: the same as data with that one
    narrowed = _replay(tmp_path, profile, "narrowed", "--features", "car_value")
    assert narrowed == _replay(tmp_path, REFERENCE, "data-one", "--features", "car_value")
    assert {json.loads(line)["feature"] for line in narrowed[1]} == {"car_value"}
    other = CliRunner().invoke(
        app,
        ["replay", str(ANALYSIS), "--reference", str(profile), "--window", "5000",
         "--features", "car_value,nope", "--no-store"],
    )  # fmt: skip
    assert other.exit_code != 0
    assert "features not in the reference profile: ['nope']" in str(other.exception)


def test_unknown_features_fail_and_ndjson_named_json_is_data(tmp_path):
    result = CliRunner().invoke(
        app, ["profile", "build", str(REFERENCE), "--features", "nope", "--output", "x.json"]
    )
    assert result.exit_code == 1
    assert "features not in the reference: ['nope']" in result.output
    rows = tmp_path / "rows.json"
    pl.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]}).write_ndjson(rows)
    loaded = load_reference(rows)
    assert isinstance(loaded, pl.DataFrame)
    assert loaded.height == 2
