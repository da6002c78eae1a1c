"""The ``driftline`` command.

Sub-commands arrive with the parts they drive (``migrate``, ``api``, ``worker``,
``replay``, ``up``, ``demo`` ...); this module only wires them together.
"""

from __future__ import annotations

from typing import Annotated

import typer

from driftline import __version__

app = typer.Typer(
    name="driftline",
    help="Driftline: watch ML models in production (drift, degradation, alerts).",
    no_args_is_help=True,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"driftline {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Driftline command line."""
