"""``driftline profile build``: fit a reference profile once and keep it as JSON.

A profile (:class:`detectors.ReferenceProfile`: quantile bins with their counts,
vocabularies, moments, missing counts) is what every window is compared against. Fitted
once from a large reference file, it is reused without the data: ``reference:
profile.json`` in a monitors file (``DRIFTLINE_MONITORS_FILE``) or
``driftline replay --reference profile.json``. Features are chosen as ``driftline replay``
chooses them (:func:`engine.replay.reference_features`), so both give the same results.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from detectors import ReferenceProfile

profile = typer.Typer(
    name="profile", help="Reference profiles: fit once, reuse in monitors and replay."
)


def describe(fitted: ReferenceProfile) -> list[str]:
    """One line per feature: counts and moments (numeric) or categories (categorical).

    ``n`` counts the non-missing values; ``top`` is the most frequent category with its
    share of the non-missing values.
    """
    lines = []
    for j, name in enumerate(fitted.numeric):
        lines.append(
            f"{name:<28} numeric      n={int(fitted.n[j])} missing={int(fitted.nulls[j])} "
            f"mean={fitted.mean[j]:.4g} std={fitted.std[j]:.4g} "
            f"min={fitted.minimum[j]:.4g} max={fitted.maximum[j]:.4g}"
        )
    for j, name in enumerate(fitted.categorical):
        vocabulary = fitted.vocabulary[j]
        counts = fitted.category_counts[j][: len(vocabulary)]
        total = int(counts.sum())
        top = int(counts.argmax()) if total else -1
        share = f"{vocabulary[top]!r} {counts[top] / total:.0%}" if total else "none"
        lines.append(
            f"{name:<28} categorical  n={total} missing={int(fitted.category_nulls[j])} "
            f"categories={len(vocabulary)} top={share}"
        )
    return lines


@profile.command("build")
def build_command(
    reference: Annotated[Path, typer.Argument(help="Reference data: Parquet, CSV or NDJSON")],
    output: Annotated[
        Path, typer.Option("--output", help="Where to write the profile (JSON)")
    ] = Path("profile.json"),
    features: Annotated[
        str | None, typer.Option("--features", help="a,b,c (default: every other column)")
    ] = None,
    categorical: Annotated[
        str | None,
        typer.Option("--categorical", help="c,d (default: the columns of a non-numeric dtype)"),
    ] = None,
    id_column: Annotated[str | None, typer.Option("--id-column")] = "id",
    timestamp_column: Annotated[str | None, typer.Option("--timestamp-column")] = "timestamp",
    prediction_column: Annotated[
        str | None, typer.Option("--prediction-column", help="Not a feature")
    ] = None,
    label_column: Annotated[
        str | None, typer.Option("--label-column", help="Not a feature")
    ] = None,
) -> None:
    """Fit the reference profile of REFERENCE and write it as JSON, with a summary per feature.

    Without --features, every column except the id, timestamp, prediction and label
    columns is a feature, as in `driftline replay`.
    """
    from tqdm import tqdm

    from engine.replay import ReplayColumns, fit_reference, read_table, split_names

    columns = ReplayColumns(
        timestamp=timestamp_column or None,
        id=id_column or None,
        prediction=prediction_column,
        label=label_column,
        features=split_names(features),
        categorical=split_names(categorical),
    )
    with tqdm(total=3, unit="step", disable=None) as bar:
        bar.set_description(f"reading {reference.name}")
        frame = read_table(reference)
        bar.update()
        bar.set_description(f"fitting {frame.height} rows")
        try:
            fitted = fit_reference(frame, columns)
        except ValueError as error:
            bar.close()
            typer.echo(f"profile build failed: {error}", err=True)
            raise typer.Exit(code=1) from error
        bar.update()
        bar.set_description(f"writing {output.name}")
        output.write_text(json.dumps(fitted.to_dict()) + "\n")
        bar.update()
    typer.echo(
        f"{output}: {len(fitted.numeric) + len(fitted.categorical)} features "
        f"({len(fitted.numeric)} numeric, {len(fitted.categorical)} categorical) "
        f"from {frame.height} rows of {reference}"
    )
    for line in describe(fitted):
        typer.echo(f"  {line}")
