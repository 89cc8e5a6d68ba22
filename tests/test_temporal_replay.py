"""Temporal's Replayer on histories recorded from a real run (tests/fixtures/temporal/).

The recorded histories must replay without a non-determinism error, with
``policy_engine`` passed through (as the worker runs) and with every module
re-imported under the sandbox's restrictions, and every Update handler must
return, on replay, exactly the result recorded in history.

Both this release's recordings (tests/fixtures/temporal/) and the previous
release's (tests/fixtures/temporal/previous/) must replay: a deploy must not fail
the tasks of runs the previous release recorded.

And the replay must FAIL when the decision logic changes. The Replayer compares
the workflow's commands, not Update results, so the fixture's scenario makes
decisions show in the commands: a reservation starts the idle-expiry timer, and
a close or cancel of an approved trade releases risk and sends the envelope to
the three registered instrument workflows, of a rejected one nothing.
Rejecting what was approved changes which timers and signals the workflow
commands: a non-determinism error. A change that keeps every approval but not
its amount leaves the commands alone; the replay catches it by comparing each
recomputed Update result with the one in history (an interceptor records them).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.worker import (
    HandleUpdateInput,
    Interceptor,
    Replayer,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)
from temporalio.workflow import NondeterminismError

from policy_engine.engine.outcome import AMOUNT, APPROVED, MODE, OVERRIDDEN, REJECTED, STATUS
from policy_engine.engine.policy import Policy
from policy_engine.temporal import WORKFLOWS, workflow_runner

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "temporal"
PREVIOUS = FIXTURES / "previous"  # recorded by the previous release: still replayed


def _histories(folder: Path = FIXTURES) -> dict[str, WorkflowHistory]:
    """Each fixture by file name (its workflow id, which the workflow reads, from
    workflow-ids.json)."""
    ids = json.loads((folder / "workflow-ids.json").read_text())
    assert sorted(ids) == ["control-run1.json", "control-run2.json", "ledger.json", "symbol.json"]
    return {
        name: WorkflowHistory.from_json(workflow_id, (folder / name).read_text())
        for name, workflow_id in sorted(ids.items())
    }


class _Results(Interceptor):
    """Records what every Update handler returns during a replay, by Update id."""

    def __init__(self) -> None:
        self.results: dict[str, Any] = {}

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        results = self.results

        class Inbound(WorkflowInboundInterceptor):
            async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
                result = await super().handle_update_handler(input)
                results[input.id] = json.loads(json.dumps(result))
                return result

        return Inbound


def _recorded(history: WorkflowHistory) -> dict[str, Any]:
    """The Update results a history holds, by Update id."""
    out = {}
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            attrs = event.workflow_execution_update_completed_event_attributes
            out[attrs.meta.update_id] = json.loads(attrs.outcome.success.payloads[0].data)
    return out


def _replay(passthrough: bool, folder: Path = FIXTURES) -> tuple[dict[str, Exception], list[str]]:
    """Replay every fixture: the non-determinism failures by file name, and the
    Updates whose recomputed result differs from the recorded one."""
    results = _Results()
    replayer = Replayer(
        workflows=WORKFLOWS,
        workflow_runner=workflow_runner(passthrough=passthrough),
        interceptors=[results],
    )

    async def run() -> tuple[dict[str, Exception], list[str]]:
        failures, differ = {}, []
        for name, history in _histories(folder).items():
            result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
            if result.replay_failure is not None:
                failures[name] = result.replay_failure
                continue
            recorded = _recorded(history)
            assert recorded or name == "ledger.json"  # the ledger takes signals only
            assert set(recorded) <= set(results.results)
            differ += [uid for uid, value in recorded.items() if results.results[uid] != value]
        return failures, differ

    return asyncio.run(run())


@pytest.mark.parametrize("folder", [FIXTURES, PREVIOUS], ids=["this-release", "previous-release"])
@pytest.mark.parametrize("passthrough", [True, False], ids=["passthrough", "fully-sandboxed"])
def test_the_recorded_histories_replay_without_nondeterminism(
    passthrough: bool, folder: Path
) -> None:
    assert _replay(passthrough, folder) == ({}, [])


Decide = Callable[[Policy, Any, Any], Any]


def _stricter(decide: Decide) -> Decide:
    """A strategy limit one lower: what was approved is rejected by strategy-max-trades."""

    def changed(policy: Policy, intent: Any, state: Any) -> Any:
        out = decide(policy, intent, state)
        if out[STATUS] != APPROVED or intent.risk_reducing:
            return out
        rule = next(i for i, r in enumerate(policy.rules) if r.id == "strategy-max-trades")
        return (REJECTED, rule, 0.0, None, None, out[MODE], out[OVERRIDDEN], None)

    return changed


def _smaller(decide: Decide) -> Decide:
    """Approved amounts halved (a cap computed wrongly): the same codes, less risk."""

    def changed(policy: Policy, intent: Any, state: Any) -> Any:
        out = decide(policy, intent, state)
        if out[STATUS] != APPROVED or not out[AMOUNT]:
            return out
        return (*out[:AMOUNT], round(out[AMOUNT] / 2, 6), *out[AMOUNT + 1 :])

    return changed


def test_the_replay_fails_when_approvals_change(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Policy, "decide", _stricter(Policy.decide))
    failures, _differ = _replay(passthrough=True)  # the workflow runs the patched module
    # this release's runs: the guard fails the first task, before any decision is replayed
    assert "decision logic differs" in str(failures.get("control-run1.json"))
    # the previous release's (no guard): other timers and signals, a non-determinism error
    failures, _differ = _replay(passthrough=True, folder=PREVIOUS)
    assert isinstance(failures.get("control-run1.json"), NondeterminismError)


def test_the_replay_fails_when_only_approved_amounts_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same commands, other amounts: the workflow's decision-logic guard fails the
    replay loudly (a history recorded before the guard: the recomputed Update results
    differ from the recorded ones, which only this test's interceptor notices)."""
    monkeypatch.setattr(Policy, "decide", _smaller(Policy.decide))
    failures, _differ = _replay(passthrough=True)
    for name in ("control-run1.json", "control-run2.json"):
        assert "decision logic" in str(failures.get(name)), failures
    failures, differ = _replay(passthrough=True, folder=PREVIOUS)
    assert failures == {}  # the same commands: the Replayer alone would not notice
    assert "intent:a1:" in " ".join(differ) and len(differ) >= 3  # the decisions do
