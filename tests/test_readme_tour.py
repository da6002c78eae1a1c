"""The README's five-minute tour runs as written against `driftline up` on a fresh folder.

The tour's shell blocks are marked in README.md (``<!-- tour: NAME -->`` before a ```` ```bash ````
block), its real output likewise (``<!-- tour output: NAME -->`` before a ```` ```text ````
block). The ``server`` block is started as it is, plus ``--port`` (a free one), from a fresh
folder holding only links to this checkout's ``.venv`` and ``docs`` (so ``./driftline-data``
is new); every other block runs in order in one bash session (``set -euo pipefail``) with
``DRIFTLINE_URL`` pointing at it, as the README says. Each step's output must equal the
README's, timestamps aside: the tour's data is fixed (``docs/tour/make_data.py``), so every
number is reproducible.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from tests.servers import free_port, wait_until_healthy

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
STEP = re.compile(r"<!-- tour: (?P<name>[\w-]+) -->\n```bash\n(?P<code>.*?)\n```", re.DOTALL)
OUTPUT = re.compile(
    r"<!-- tour output: (?P<name>[\w-]+) -->\n```text\n(?P<text>.*?)\n```", re.DOTALL
)
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z")
SEPARATOR = "=== tour step: "


def steps() -> list[tuple[str, str]]:
    return [(m["name"], m["code"]) for m in STEP.finditer(README.read_text())]


def shown() -> dict[str, str]:
    return {m["name"]: m["text"] for m in OUTPUT.finditer(README.read_text())}


def _masked(text: str) -> str:
    return TIME.sub("<time>", text.strip())


def test_the_tour_data_is_what_its_script_writes(tmp_path):
    subprocess.run(
        [sys.executable, str(ROOT / "docs/tour/make_data.py"), str(tmp_path)],
        check=True,
        timeout=60,
    )
    for name in ("reference.csv", "events.ndjson"):
        assert (tmp_path / name).read_bytes() == (ROOT / "docs/tour" / name).read_bytes(), (
            "run: python docs/tour/make_data.py"
        )


def test_the_readme_tour_runs_as_written_and_shows_its_real_output(tmp_path):
    names = [name for name, _ in steps()]
    assert names == ["server", "login", "configure", "send", "results"]
    assert set(shown()) <= set(names)
    for tool in ("curl", "jq", "bash"):
        assert shutil.which(tool), f"the tour needs {tool} (apt-get install {tool})"
    folder = tmp_path / "checkout"
    folder.mkdir()
    (folder / ".venv").symlink_to(Path(sys.executable).parents[1])
    (folder / "docs").symlink_to(ROOT / "docs")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    (_, server), *rest = steps()
    process = subprocess.Popen(
        ["bash", "-c", f"{server} --port {port}"],
        cwd=folder, env=env, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        wait_until_healthy(process, base, lambda: process.stdout.read() if process.stdout else "")
        script = "set -euo pipefail\n" + "".join(
            f"echo '{SEPARATOR}{name}'\n{code}\n" for name, code in rest
        )
        tour = subprocess.run(
            ["bash", "-c", script],
            cwd=folder, env=env | {"DRIFTLINE_URL": base},
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        log, _ = process.communicate(timeout=60)
    assert tour.returncode == 0, tour.stdout + tour.stderr + log[-3000:]
    outputs = dict(
        part.split("\n", 1) if "\n" in part else (part, "")
        for part in tour.stdout.split(SEPARATOR)[1:]
    )
    assert list(outputs) == names[1:]
    for name, text in shown().items():
        assert _masked(outputs[name]) == _masked(text), f"{name} printed:\n{outputs[name]}"
    assert '"accepted":610,"rejected":0' in outputs["send"]
    drifted = [line for line in outputs["results"].splitlines() if '"drifted_windows":1' in line]
    assert len(drifted) == 1
    assert '"feature":"income"' in drifted[0]
    assert '{"state":"firing","severity":"critical"' in outputs["results"]
    assert (folder / "driftline-data").is_dir()  # the README's default data folder
    assert f"API docs:   {base}/docs" in log
    assert "you@example.com (organization Default)" in log
