"""``driftline replay``: backtest a monitor over a file of logged predictions."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from driftline.settings import load_settings


def replay_command(
    events: Annotated[Path, typer.Argument(help="Events: Parquet, CSV or NDJSON")],
    reference: Annotated[
        Path,
        typer.Option(
            "--reference",
            help="Reference data (same formats) or a profile from `driftline profile build`",
        ),
    ],
    window: Annotated[
        str, typer.Option("--window", help="N rows (e.g. 5000) or a duration (e.g. 1h)")
    ],
    monitor: Annotated[
        Path | None, typer.Option("--monitor", help="A monitor YAML/JSON (overrides defaults)")
    ] = None,
    timestamp_column: Annotated[str | None, typer.Option("--timestamp-column")] = "timestamp",
    id_column: Annotated[str | None, typer.Option("--id-column")] = "id",
    features: Annotated[str | None, typer.Option("--features", help="a,b,c")] = None,
    categorical: Annotated[str | None, typer.Option("--categorical", help="c,d")] = None,
    prediction_column: Annotated[str | None, typer.Option("--prediction-column")] = None,
    label_column: Annotated[str | None, typer.Option("--label-column")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", help="One JSON line per window x feature x statistic")
    ] = None,
    organization: Annotated[str, typer.Option("--organization")] = "local",
    store: Annotated[
        bool, typer.Option("--store/--no-store", help="Also write results to the metrics store")
    ] = True,
    min_samples: Annotated[int, typer.Option("--min-samples")] = 100,
) -> None:
    """Stream EVENTS through the pipeline in event-time order against a profile of REF."""
    from tqdm import tqdm

    from engine.deadletter import MemoryDeadLetters
    from engine.monitor import load_monitors
    from engine.pipeline import Pipeline
    from engine.replay import (
        ReplayColumns,
        build_monitor,
        load_reference,
        read_table,
        replay,
        split_names,
        window_spec,
    )
    from engine.sinks import FanOut, JsonlSink, MemorySink, MetricsStoreSink, ResultSink
    from engine.writes import write_policy

    columns = ReplayColumns(
        timestamp=timestamp_column or None,
        id=id_column or None,
        prediction=prediction_column,
        label=label_column,
        features=split_names(features),
        categorical=split_names(categorical),
    )
    events_frame = read_table(events)
    reference_data = load_reference(reference)
    spec = window_spec(window)
    if monitor is not None:
        chosen = load_monitors(monitor)[0]
    else:
        labels = (
            events_frame.get_column(label_column)
            if label_column is not None and label_column in events_frame.columns
            else None
        )  # a profile keeps no labels: the task (classes) is read from the events then
        chosen = build_monitor(
            reference_data, columns, window=spec, min_samples=min_samples, labels=labels
        )
    # The durable store first: when it fails nothing after it is written, and the retry of
    # the same window (idempotent in the store) reaches the other sinks exactly once.
    sinks: list[ResultSink] = []
    client = None
    if store:
        from storage.clickhouse.client import connect
        from storage.clickhouse.migrations import MigrationParams, migrate

        settings = load_settings()
        client = connect(settings.clickhouse_url, default_database=settings.clickhouse_database)
        migrate(client, MigrationParams(ttl_days=settings.metrics_ttl_days))
        sinks.append(MetricsStoreSink(client, organization))
    memory = MemorySink()
    sinks.append(memory)
    jsonl = JsonlSink.open(output) if output is not None else None
    if jsonl is not None:
        sinks.append(jsonl)
    dead = MemoryDeadLetters()
    # The windows each chunk closes go in one insert per table; chunks are cut at fixed
    # rows, so the same replay run again forms the same groups and writes nothing twice.
    pipeline = Pipeline(
        organization=organization,
        monitors=[chosen],
        sink=FanOut(sinks),
        dead_letters=dead,
        writes=write_policy(),
    )
    try:
        with tqdm(total=events_frame.height, unit="ev", disable=None) as bar:

            def advance(rows: int) -> None:
                bar.update(rows)

            replay(events_frame, pipeline, chosen, columns, progress=advance)
    finally:
        if jsonl is not None:
            jsonl.stream.close()
        if client is not None:
            client.close()
    if pipeline.pending:
        typer.echo(
            f"replay failed: {pipeline.pending} window result(s) could not be written "
            "to the metrics store",
            err=True,
        )
        raise typer.Exit(code=1)
    drifted = [r for r in memory.results if r.drifted_features]
    summary = {
        "events": events_frame.height,
        "windows": len([r for r in memory.results if r.phase == "window"]),
        "windows_with_drift": len(drifted),
        "first_drift_window": (drifted[0].report_lines()[0]["window_start"] if drifted else None),
        "drifted_features": sorted({f for r in drifted for f in r.drifted_features}),
        "dead_letters": len(dead.letters),
    }
    typer.echo(json.dumps(summary, indent=2))
    if store and memory.results:
        oldest_days = (time.time() * 1000 - min(r.start_ms for r in memory.results)) / 86_400_000
        ttl = load_settings().metrics_ttl_days
        if oldest_days > ttl:
            typer.echo(
                f"note: the oldest window is {oldest_days:.0f} days old, past the metrics TTL "
                f"({ttl} days): ClickHouse drops such rows at its next merge. Raise "
                "DRIFTLINE_METRICS_TTL_DAYS before `driftline migrate` to keep a backtest.",
                err=True,
            )
