import os
import subprocess
import sys
import uuid

from typer.testing import CliRunner

from driftline.cli import app
from storage.clickhouse.client import connect
from storage.db_migrations import head_revision


def test_migrate_twice_changes_nothing(tmp_path, chdb_folder):
    database = f"t_{uuid.uuid4().hex[:12]}"
    env = {
        "DRIFTLINE_DATA_DIR": str(tmp_path / "data"),
        # the session's chDB folder: a process opens one folder at a time
        "DRIFTLINE_CLICKHOUSE_URL": f"chdb://{chdb_folder}?database={database}",
    }
    runner = CliRunner()
    first = runner.invoke(app, ["migrate"], env=env)
    assert first.exit_code == 0, first.output
    assert f"control database: at revision {head_revision()}" in first.output
    assert "metrics store: applied 1, 2, 3" in first.output
    assert (tmp_path / "data" / "driftline.db").is_file()
    with connect(env["DRIFTLINE_CLICKHOUSE_URL"]) as client:
        before = client.query_rows(
            "SELECT name, metadata_modification_time FROM system.tables "
            "WHERE database = currentDatabase() ORDER BY name"
        )
    second = runner.invoke(app, ["migrate"], env=env)
    assert second.exit_code == 0, second.output
    assert "metrics store: up to date" in second.output
    with connect(env["DRIFTLINE_CLICKHOUSE_URL"]) as client:
        after = client.query_rows(
            "SELECT name, metadata_modification_time FROM system.tables "
            "WHERE database = currentDatabase() ORDER BY name"
        )
        client.command(f"DROP DATABASE {database}")
    assert after == before


def test_migrate_reports_an_unreachable_metrics_store(tmp_path):
    env = {
        "DRIFTLINE_DATA_DIR": str(tmp_path / "data"),
        "DRIFTLINE_CLICKHOUSE_URL": "http://127.0.0.1:9/driftline",
        "DRIFTLINE_CLICKHOUSE_RETRIES": "1",
        "DRIFTLINE_CLICKHOUSE_RETRY_BACKOFF_SECONDS": "0",
    }
    result = CliRunner().invoke(app, ["migrate"], env=env)
    assert result.exit_code == 1
    assert "migrate failed: metrics store unavailable" in result.output


def test_migrate_with_every_default_in_a_fresh_process(tmp_path):
    """The embedded default, end to end: chDB, SQLite and folders under the data dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
    env["DRIFTLINE_DATA_DIR"] = str(tmp_path / "data")
    command = [sys.executable, "-c", "from driftline.cli import app; app()", "migrate"]
    for expected in ("applied 1, 2, 3", "up to date"):
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stderr
        assert expected in done.stdout
    assert (tmp_path / "data" / "metrics").is_dir()
