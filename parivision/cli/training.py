"""``train``, ``evaluate``, ``promote``, ``rollback``: the model's lifecycle, and its tables."""

from __future__ import annotations

import json
import math
from typing import Annotated

import typer
from rich.console import Console

from parivision.cli.common import (
    CandidateOption,
    app,
    console,
    fail,
    load_settings,
    start_services,
)


@app.command("train")
def train_command(
    data: Annotated[
        list[str] | None,
        typer.Option(
            "--data",
            help="22-column CSV (.csv/.csv.gz), VirtualBets JSON, or an API URL; repeat it to "
            "train on several (a player's game found in two is taken from the first).",
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Use only the first N rows of each.")] = None,
    since: Annotated[
        int | None, typer.Option(help="Train only on shots on or after this game date (YYYYMMDD).")
    ] = None,
    until: Annotated[
        int | None,
        typer.Option(help="Train only on shots on or before this game date (YYYYMMDD)."),
    ] = None,
    champion: Annotated[
        bool | None,
        typer.Option(
            "--champion/--challenger",
            help="Force the champion alias (default: only when there is no champion yet).",
        ),
    ] = None,
    candidate: CandidateOption = None,
    validation_share: Annotated[
        float, typer.Option(help="The most recent share of shots (whole dates) that validates.")
    ] = 0.15,
    half_life_days: Annotated[
        float | None,
        typer.Option(
            help="A shot this many days older than the newest counts half (0: all the same; "
            "default PARIVISION_TRAIN_HALF_LIFE_DAYS)."
        ),
    ] = None,
) -> None:
    """Train the candidate models on past shots, log each to MLflow, register the best."""
    from rich.table import Table

    from models.data import training_frames
    from models.lineage import lineage_of
    from models.promotion import PromotionError
    from models.train import train_and_register

    for option, date in (("--since", since), ("--until", until)):
        if date is not None and not 19_000_101 <= date <= 21_001_231:
            fail(f"{option} {date} is not a YYYYMMDD date")
    settings = load_settings()
    start_services(settings)
    # --champion over an existing champion is a promotion like any other: the one it replaces
    # watches it, and it is rolled back if it does worse live (models.promotion.moves).
    from models.registry import champion_version

    replacing = champion_version(settings) if champion else None
    try:
        frame, name = training_frames(data, limit=limit, since=since, until=until)
        if frame.attrs.get("duplicate_rows"):
            typer.echo(
                f"{frame.attrs['duplicate_rows']:,} shots of player-games already in an earlier "
                "file were left out"
            )
        result = train_and_register(
            settings,
            frame,
            data_name=name,
            make_champion=False if replacing else champion,
            candidates=candidate,
            validation_share=validation_share,
            half_life_days=half_life_days,
            # What it learned from, so a retrain can learn it again (models.lineage).
            lineage=lineage_of(data, limit=limit, since=since, until=until),
            console=console,
        )
        if replacing:
            from models.promotion import promote
            from parivision.topics import ensure_topics

            ensure_topics(settings)
            promote(
                settings,
                result.version,
                reason=f"trained with --champion on {name}, without a challenge",
                how="forced",
            )
            result.champion = True
    except (ValueError, FileNotFoundError, ConnectionError) as error:
        fail(str(error))
    except PromotionError as error:  # the aliases moved; only the event did not reach Kafka
        console.print(f"[yellow]{error}[/]")
        result.champion = True
    window = result.window
    table = Table(
        title=f"validation {window.get('valid_from', '')}-{window.get('valid_to', '')} "
        f"({window['valid_rows']:,} shots; trained on {window['train_rows']:,})"
    )
    measured = ("log_loss", "roc_auc", "brier", "ece", "accuracy", "f1")
    for column in ("candidate", "log loss", "ROC-AUC", "Brier", "ECE", "accuracy", "F1", "fit s"):
        table.add_column(column, justify="left" if column == "candidate" else "right")
    table.add_row("base rate", f"{result.metrics['base_rate_log_loss']:.4f}", *["-"] * 6)
    for r in sorted(result.candidates, key=lambda r: r.metrics["log_loss"]):
        m = r.metrics
        table.add_row(
            f"[bold]{r.name}[/]" if r.name == result.candidate else r.name,
            *(f"{m[k]:.4f}" for k in measured),
            f"{r.fit_seconds:.1f}",
        )
    console.print(table)
    if result.recalibration is not None:
        kept = "recalibrated" if result.recalibration.calibration else "not recalibrated"
        typer.echo(f"{result.candidate} {kept}: {result.recalibration.reason}")
    role = "champion" if result.champion else "challenger (no alias)"
    typer.echo(
        f"registered {settings.registered_model()} v{result.version} ({result.candidate}) "
        f"as {role}: " + json.dumps({k: round(v, 4) for k, v in result.metrics.items()})
    )


@app.command("evaluate")
def evaluate_command(
    data: Annotated[
        str, typer.Option("--data", help="Labelled shots: 22-column CSV or VirtualBets JSON.")
    ],
    model: Annotated[
        str | None,
        typer.Option(help="A version number, or an alias (default: the champion alias)."),
    ] = None,
    since: Annotated[
        int | None, typer.Option(help="Only shots on or after this game date (YYYYMMDD).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Read only the first N rows.")] = None,
    form_history: Annotated[
        list[str] | None,
        typer.Option(
            help="Shot files to start players' form from (repeatable; default "
            "PARIVISION_FORM_HISTORY; none: form starts from nothing, as for a new stream)."
        ),
    ] = None,
) -> None:
    """Replay labelled shots in time order through a registered model and measure it: by
    month, then by season, season type, shot zone and the shooter's earlier shots."""
    from rich.table import Table

    from models.data import training_frame, warm_form
    from models.evaluate import ModelUnavailableError, evaluate_registered

    if since is not None and not 19_000_101 <= since <= 21_001_231:
        fail(f"--since {since} is not a YYYYMMDD date")
    settings = load_settings()
    try:
        frame, name = training_frame(data, limit=limit)
        warm, history_shots = warm_form(form_history or settings.form_history)
        if warm:
            typer.echo(
                f"players' form starts from {history_shots:,} earlier shots "
                f"({len(warm):,} players)",
                err=True,
            )
        result = evaluate_registered(
            settings, frame, model=model, since=since, data=name, warm=warm
        )
    except (ModelUnavailableError, ValueError, FileNotFoundError, ConnectionError) as error:
        fail(str(error))
    out = Console()
    table = Table(
        title=f"{result.model_name} v{result.model_version} ({result.candidate}) on {name}: "
        f"{result.first_date}-{result.last_date}"
    )
    for column in ("month", *_MEASURED_COLUMNS):
        table.add_column(column, justify="left" if column == "month" else "right")
    for month in result.months:
        table.add_row(month["month"], *_measured_cells(month))
    table.add_section()
    overall = {
        "rows": result.rows,
        "make_rate": result.make_rate,
        "mean_prediction": result.mean_prediction,
        **result.metrics,
    }
    table.add_row("[bold]all[/]", *_measured_cells(overall, bold=True))
    out.print(table)
    out.print(_segment_table(result.segments))
    for side, rows in (
        ("trained", result.rows_in_training_window),
        ("chosen", result.rows_in_validation_window),
    ):
        if rows:
            console.print(
                f"[yellow]note:[/] {rows:,} of these shots are dated within the window this "
                f"version was {side} on; if they are the same shots, the metrics are optimistic "
                "(`--since` a later date measures it on shots it has not seen)"
            )
    out.file.flush()
    typer.echo(json.dumps(result.as_dict()))


_MEASURED_COLUMNS = ("shots", "make rate", "mean P", "log loss", "ROC-AUC", "Brier", "ECE")

# How `parivision evaluate` names each kind of segment (models.evaluate.segments_of).
_SEGMENT_NAMES = {
    "season": "season",
    "season_type": "season type",
    "zone": "shot zone",
    "history": "earlier shots",
}


def _measured_cells(row: dict, bold: bool = False) -> list[str]:
    """Shots, make rate, mean P and the metrics of one evaluated row; "-" for an undefined one
    (ROC-AUC where every shot was made, or every shot missed)."""
    metrics = [row[k] for k in ("log_loss", "roc_auc", "brier", "ece")]
    cells = ["-" if math.isnan(v) else f"{v:.4f}" for v in metrics]
    if bold:
        cells = [f"[bold]{cell}[/]" for cell in cells]
    return [f"{row['rows']:,}", f"{row['make_rate']:.3f}", f"{row['mean_prediction']:.3f}", *cells]


def _segment_table(segments: dict[str, list[dict]]):
    """One table of every segment kind, a section each: the value, then its shots and metrics."""
    from rich.table import Table

    table = Table(title="by segment")
    table.add_column("segment")
    table.add_column("value", no_wrap=True)
    for column in _MEASURED_COLUMNS:
        table.add_column(column, justify="right")
    for kind, rows in segments.items():
        for index, row in enumerate(rows):
            label = _SEGMENT_NAMES.get(kind, kind) if index == 0 else ""
            table.add_row(label, row[kind] or "(none)", *_measured_cells(row))
        table.add_section()
    return table


def _print_decision(decision) -> None:
    """The decision as a table on stdout (metrics side by side), then the reason."""
    from rich.table import Table

    out = Console()
    champion, challenger = (decision.metrics.get(side, {}) for side in ("champion", "challenger"))
    was = f"v{decision.previous_version}" if decision.previous_version else "none"
    window = decision.window
    title = f"{decision.model}: champion {was}"
    if decision.challenger_version:
        title += f" vs challenger v{decision.challenger_version}"
    if window:
        title += f" on the {window.get('shots', 0):,} most recently labelled shots"
    table = Table(title=title)
    for column in ("metric", f"champion {was}", f"challenger v{decision.challenger_version}"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    table.add_column("difference", justify="right")
    labels = {
        "log_loss": "log loss",
        "roc_auc": "ROC-AUC",
        "brier": "Brier",
        "accuracy": "accuracy",
    }
    for name, label in labels.items():
        a, b = champion.get(name), challenger.get(name)
        table.add_row(
            label,
            "-" if a is None else f"{a:.4f}",
            "-" if b is None else f"{b:.4f}",
            "-" if a is None or b is None else f"{b - a:+.4f}",
        )
    if decision.metrics:
        out.print(table)
    colour = {
        "promoted": "green",
        "refused": "yellow",
        "rolled_back": "cyan",
        "shadowing": "magenta",
        "confirmed": "green",
    }[decision.event]
    now = f"v{decision.version}" if decision.version else "none"
    out.print(f"[bold {colour}]{decision.event.upper().replace('_', ' ')}[/]: {decision.reason}")
    if window:
        out.print(
            f"window: {window.get('shots', 0):,} labelled shots (asked for "
            f"{window.get('requested', 0):,}), log-loss margin {decision.margin:g}"
        )
    changed = decision.version != decision.previous_version
    out.print(f"champion of {decision.model} {'is now' if changed else 'stays'} {now}")
    shadow = decision.shadow
    if shadow and decision.event in ("shadowing", "promoted"):
        role = "the challenger" if shadow["role"] == "challenger" else "the previous champion"
        out.print(
            f"in shadow: v{shadow['version']} ({role}) scores beside champion "
            f"v{shadow['champion']} for {shadow['shots']:,} labelled shots; the retrain loop "
            "judges it (`parivision retrain-loop`)"
        )
    for side, count in (window.get("dated_in_training_window") or {}).items():
        if count:
            console.print(
                f"[yellow]note:[/] {count:,} window shots are dated within the {side}'s "
                "training or validation window; its numbers there may be optimistic"
            )
    out.file.flush()


@app.command("promote")
def promote_command(
    version: Annotated[str, typer.Argument(help="The challenger: a version number (or vN).")],
    window: Annotated[
        int | None,
        typer.Option(
            help="Measure on the N most recently labelled shots in MongoDB "
            "[default: PARIVISION_PROMOTION_WINDOW, 5000]."
        ),
    ] = None,
    margin: Annotated[
        float | None,
        typer.Option(
            help="How much lower the challenger's log loss must be "
            "[default: PARIVISION_PROMOTION_MARGIN, 0.002]."
        ),
    ] = None,
    now: Annotated[
        bool,
        typer.Option(
            "--now", help="Promote at once if it passes the checks, without a shadow first."
        ),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Promote without any check (the previous champion still watches it, and it "
            "is rolled back if it does worse live).",
        ),
    ] = False,
) -> None:
    """Challenge the champion: VERSION must beat it on recent labelled shots and be no worse on
    its validation window; then it shadows the champion live and is promoted only if it beats
    it there too (the retrain loop judges the shadow)."""
    from models.promotion import PromotionError, challenge, promote
    from models.registry import resolve_version
    from parivision.topics import ensure_topics

    if (window is not None and window < 1) or (margin is not None and margin < 0):
        fail("--window must be at least 1 and --margin 0 or more")
    settings = load_settings()
    start_services(settings)
    ensure_topics(settings)
    try:
        if force:
            decision = promote(
                settings,
                resolve_version(settings, version),
                reason="promoted by hand with --force, without a challenge",
                how="forced",
            )
        else:
            decision = challenge(settings, version, window=window, margin=margin, now=now)
    except (PromotionError, LookupError, ValueError, ConnectionError) as error:
        fail(str(error))
    _print_decision(decision)
    # Refused is an answer, not a failure: both exit 0; the JSON says which.
    typer.echo(json.dumps(decision.as_event()))


@app.command("rollback")
def rollback_command() -> None:
    """Give the champion alias back to the version the last promotion replaced."""
    from models.promotion import PromotionError, rollback
    from parivision.topics import ensure_topics

    settings = load_settings()
    start_services(settings)
    ensure_topics(settings)
    try:
        decision = rollback(settings)
    except (PromotionError, LookupError, ConnectionError) as error:
        fail(str(error))
    _print_decision(decision)
    typer.echo(json.dumps(decision.as_event()))
