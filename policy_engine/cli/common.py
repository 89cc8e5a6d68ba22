"""What every command shares: usage errors, progress bars, reading inputs, counting."""

from __future__ import annotations

import json
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
    """Load a policy for running; on any error print its diagnostics and exit 1."""
    from ..diagnostics import PolicyError
    from ..engine.policy import load_policy

    try:
        return load_policy(path)
    except PolicyError as exc:
        for x in exc.diagnostics:
            click.echo(x.format(), err=True)
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
    from ..control.events import EventError
    from ..control.journal import read_events

    try:
        yield from read_events(path)
    except EventError as exc:
        raise UsageError(str(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read `{path}`: {exc}") from None
