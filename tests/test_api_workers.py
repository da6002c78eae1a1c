"""``driftline api --workers N``: N processes serve one port; the embedded engine refuses it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from driftline.cli import app as cli
from tests.control_api.conftest import PASSWORD, SECRET, SECRETS_KEY
from tests.servers import free_port, wait_until_healthy

DRIFTLINE = str(Path(sys.executable).with_name("driftline"))
SERVER = "http://default@127.0.0.1:8123/metrics"  # never reached by what these tests call


def _settings(tmp_path: Path) -> dict[str, str]:
    return {
        "DRIFTLINE_DATA_DIR": str(tmp_path / "data"),
        "DRIFTLINE_JWT_SECRET": SECRET,
        "DRIFTLINE_SECRETS_KEY": SECRETS_KEY,
        "DRIFTLINE_ENVIRONMENT": "production",
        "DRIFTLINE_ARGON2_TIME_COST": "1",
        "DRIFTLINE_ARGON2_MEMORY_KIB": "64",
    }


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # ended meanwhile
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _is_worker(pid: int) -> bool:
    try:
        return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@pytest.mark.parametrize(
    ("engine_embedded", "clickhouse_url", "needed"),
    [
        ("true", SERVER, "DRIFTLINE_ENGINE_EMBEDDED=false"),
        ("false", "", "a ClickHouse server"),  # the default: chDB in the data folder
    ],
)
def test_several_workers_need_the_engine_off_and_a_clickhouse_server(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    engine_embedded: str,
    clickhouse_url: str,
    needed: str,
) -> None:
    settings = _settings(tmp_path) | {
        "DRIFTLINE_ENGINE_EMBEDDED": engine_embedded,
        "DRIFTLINE_CLICKHOUSE_URL": clickhouse_url,
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli, ["api", "--workers", "2", "--port", "0"])
    assert result.exit_code == 2
    assert needed in result.output


def test_two_workers_serve_one_port_and_stop_on_sigterm(tmp_path: Path) -> None:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
    env = inherited | _settings(tmp_path)
    subprocess.run([DRIFTLINE, "migrate"], env=env, check=True, capture_output=True)
    env |= {"DRIFTLINE_ENGINE_EMBEDDED": "false", "DRIFTLINE_CLICKHOUSE_URL": SERVER}
    port = free_port()
    log_path = tmp_path / "api.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [DRIFTLINE, "api", "--workers", "2", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(process, base, log_path.read_text)
        workers = [pid for pid in _children(process.pid) if _is_worker(pid)]
        assert len(workers) == 2, log_path.read_text()
        with httpx.Client(base_url=base) as http:
            body = {"org_name": "Acme", "email": "o@acme.example.com", "password": PASSWORD}
            assert http.post("/v1/auth/signup", json=body).status_code == 201
            form = {"username": "o@acme.example.com", "password": PASSWORD}
            token = http.post("/v1/auth/token", data=form).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        # a new connection each: the kernel spreads them over both workers' accept queue
        statuses = {
            httpx.get(f"{base}/v1/projects", headers=headers).status_code for _ in range(20)
        }
        assert statuses == {200}, log_path.read_text()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, log_path.read_text()
    assert not any(_is_worker(pid) for pid in workers)
