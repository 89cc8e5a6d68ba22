"""What every command shares: usage errors, progress bars, reading inputs, counting."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
import yaml
from tqdm import tqdm

from ..control.records import outcome

__all__ = [
    "Progress",
    "UsageError",
    "count_events",
    "equity_option",
    "events_or_exit",
    "load_or_report",
    "model_or_usage",
    "outcome",
    "plural",
    "progress",
    "read_data",
]

T = TypeVar("T")


class UsageError(click.UsageError):
    """Bad arguments: exit 2 with a one-line message."""


def progress(
    items: Sequence[T] | Iterable[T], *, desc: str, total: int | None = None
) -> Iterator[T]:
    """A progress bar on stderr when it is a terminal; the bare iterable otherwise."""
    if not sys.stderr.isatty():
        yield from items
        return
    yield from tqdm(items, desc=desc, total=total, leave=False, unit="", file=sys.stderr)


# The starting equity of a simulated run (`run`, `report`).
equity_option = click.option(
    "--equity",
    type=float,
    default=0.0,
    show_default=True,
    help="Starting equity (an `equity` event usually sets it).",
)


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def read_data(path: str, what: str) -> Any:
    """A JSON or YAML file as plain data (a usage error if it cannot be read)."""
    try:
        text = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the {what} file `{path}`: {exc}") from None
    try:
        if path.endswith(".json"):
            return json.loads(text)
        return yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid data"
        raise UsageError(f"the {what} file `{path}` is not valid JSON or YAML: {first}") from None


def load_or_report(path: str) -> Any:
    """Load a policy for running; on any error print its diagnostics (on stderr, with
    their source lines) and exit 1."""
    from ..diagnostics import PolicyError
    from ..engine.policy import load_policy
    from .render import file_sources, render_all

    try:
        return load_policy(path)
    except PolicyError as exc:
        click.echo(render_all(exc.diagnostics, file_sources()), err=True)
        sys.exit(1)


def model_or_usage(cls: Any, data: Any, path: str, what: str) -> Any:
    from pydantic import ValidationError

    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or what}: {e['msg'].lower()}"
            for e in exc.errors()
        )
        raise UsageError(
            f"the {what} file `{path}` is not a valid {cls.__name__}: {problems}"
        ) from None


class Progress:
    """A bar on stderr when it is a terminal; lines still reach stdout between redraws."""

    def __init__(self, desc: str, total: int | None) -> None:
        self.bar: Any = (
            tqdm(desc=desc, total=total, leave=False, unit=" events", file=sys.stderr)
            if sys.stderr.isatty()
            else None
        )
        self.shared = sys.stdout.isatty()  # stdout and the bar share one terminal

    def echo(self, line: str) -> None:
        if self.bar is not None and self.shared:
            self.bar.write(line, file=sys.stdout)  # clears the bar, prints, redraws it
        else:
            click.echo(line)

    def update(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def count_events(path: str) -> int | None:
    """How many events a JSON Lines file holds (for the bar's total); None if unreadable."""
    try:
        with open(path, "rb") as fh:
            return sum(1 for line in fh if line.strip())
    except OSError:
        return None


def events_or_exit(path: str) -> Iterator[dict[str, Any]]:
    """Events from a JSON Lines file; a malformed line is a usage error (exit 2)."""
    for _line, event in numbered_events_or_exit(path):
        yield event


def numbered_events_or_exit(path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, event)`` from a JSON Lines file (blank lines skipped, so the numbers
    are the file's own); a malformed line is a usage error (exit 2)."""
    from ..control.events import EventError
    from ..control.journal import CHECKPOINT_HEAD, read_events

    # `read_events` skips blank lines (and a journal's checkpoint lines); the line numbers
    # are recovered by counting them here, so that the journal reader stays the one parser
    # of event lines. A last line without its newline is fine in a file written by hand.
    checkpoint = CHECKPOINT_HEAD.decode()
    try:
        with open(path, encoding="utf-8") as fh:  # read exactly as `read_events` reads
            numbers = (
                n
                for n, line in enumerate(fh, 1)
                if line.strip() and not line.startswith(checkpoint)
            )
            yield from zip(numbers, read_events(path, lenient_tail=True), strict=False)
    except EventError as exc:
        raise UsageError(str(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read `{path}`: {exc}") from None


def quiet_stdout() -> None:
    """Point stdout at the null device: the reader closed the pipe (`| head`), so nothing
    more can be said there, and the interpreter's final flush must not fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def durability_options(command: Any) -> Any:
    """The journal's durability and checkpoint options (`run`, `recover`)."""
    for option in reversed(
        (
            click.option(
                "--fsync",
                type=click.Choice(["event", "batch", "off"]),
                default="event",
                show_default=True,
                help="When journal lines are forced to disk: after every event, per batch, "
                "or never (docs/operations.md).",
            ),
            click.option(
                "--fsync-events",
                type=click.IntRange(min=1),
                default=256,
                show_default=True,
                help="--fsync batch: sync after this many lines at most.",
            ),
            click.option(
                "--fsync-ms",
                type=click.FloatRange(min=0),
                default=100.0,
                show_default=True,
                help="--fsync batch: or once event time moved this many ms past the "
                "batch's first line.",
            ),
            click.option(
                "--checkpoint-every",
                type=click.IntRange(min=0),
                default=50_000,
                show_default=True,
                help="Write the core's snapshot to the journal every N events (0: only on "
                "close), so recovery replays only the tail.",
            ),
        )
    ):
        command = option(command)
    return command
