from typer.testing import CliRunner

from driftline import __version__
from driftline.cli import app


def test_version_prints_the_installed_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"driftline {__version__}"


def test_no_arguments_shows_help():
    result = CliRunner().invoke(app, [])
    assert "Usage" in result.output


def test_statistics_lists_every_registered_statistic():
    from detectors import STATISTICS

    result = CliRunner().invoke(app, ["statistics"])
    assert result.exit_code == 0
    lines = result.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == list(STATISTICS)
    assert "alpha=0.05" in lines[0]


def test_the_readme_lists_every_setting():
    from pathlib import Path

    from driftline.settings_doc import table

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert table() in readme, "run `python -m driftline.settings_doc` and paste it in README.md"
