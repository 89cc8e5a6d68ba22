"""One root for every exception policy-engine raises on purpose, the journal's under one
branch, and evaluation errors of a closed set of documented kinds."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import policy_engine
from policy_engine import JournalError, PolicyEngineError, PolicyError, load_policy_text
from policy_engine.control.journal import TornJournalError
from policy_engine.control.verify import JournalIntegrityError
from policy_engine.lang.errors import EvalError, EvalErrorKind

ROOT = Path(__file__).resolve().parent.parent
# The CLI's usage error is click's own (click prints it and sets the exit code).
NOT_OURS = {"policy_engine.cli.common.UsageError"}


def _exception_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(policy_engine.__path__, "policy_engine."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == info.name
                and not name.startswith("_")
            ):
                found[f"{info.name}.{name}"] = value
    return found


def test_every_public_exception_is_a_policy_engine_error() -> None:
    classes = _exception_classes()
    assert "policy_engine.control.journal.TornJournalError" in classes  # the walk found them
    strays = sorted(
        name
        for name, cls in classes.items()
        if name not in NOT_OURS and not issubclass(cls, PolicyEngineError)
    )
    assert strays == []


def test_every_journal_error_is_a_journal_error() -> None:
    """A torn journal and a broken chain are journal errors, and still event errors for the
    callers that caught them as such."""
    journal = [c for n, c in _exception_classes().items() if "Journal" in n.rsplit(".", 1)[1]]
    assert TornJournalError in journal and JournalIntegrityError in journal
    assert all(issubclass(c, JournalError) for c in journal)
    assert issubclass(TornJournalError, ValueError) and issubclass(JournalError, RuntimeError)


def test_a_broken_policy_is_caught_by_the_root() -> None:
    try:
        load_policy_text("api_version: policy-engine/v1\nname: x\nversion: 1\nrules: [\n")
    except PolicyEngineError as exc:
        assert isinstance(exc, PolicyError)
        assert "PT101" in str(exc)
    else:
        raise AssertionError("a broken policy loaded")


def test_an_undeclared_name_reports_its_namespace() -> None:
    err = EvalError(EvalErrorKind.UNDECLARED, "venue `X` is not declared", namespace="venue")
    assert err.code == "unknown_venue"
    assert EvalError(EvalErrorKind.NULL_VALUE, "`x` is null").code == "null_value"


def test_every_evaluation_error_kind_is_documented() -> None:
    text = (ROOT / "docs" / "policy-format.md").read_text("utf-8")
    documented = set(re.findall(r"^\| `([a-z_]+)(?:_<namespace>)?` \| ", text, re.M))
    assert {k.value for k in EvalErrorKind} <= documented
