"""The client's errors: one-line exceptions for every way a call to the control plane
fails, and the mapping from the SDK's RPC and Update failures onto them."""

from __future__ import annotations

from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import FailureError
from temporalio.service import RPCError, RPCStatusCode

from ..diagnostics import PolicyEngineError

# Status codes worth another attempt with the same Update id; UNAVAILABLE too (a worker
# that died holding an Update makes the server abort it as UNAVAILABLE while it is up).
RETRY = {
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
    RPCStatusCode.ABORTED,
    RPCStatusCode.CANCELLED,
}
UNAVAILABLE = {RPCStatusCode.UNAVAILABLE, *RETRY}


class ControlPlaneError(PolicyEngineError):
    """A call to the shared control plane failed (the message says why)."""


class ControlPlaneUnavailable(ControlPlaneError):
    """The Temporal server cannot be reached, or no worker answered in time."""


class PortfolioNotRunning(ControlPlaneError):
    """The portfolio's control workflow does not exist or has ended."""


class RequestRefused(ControlPlaneError):
    """The control workflow refused the request; nothing changed."""


class RetryTooLate(ControlPlaneError):
    """A retry of an intent decided so long ago that its decision is no longer remembered
    (and its trade no longer live), or a reused intent id: nothing changed. Not a
    rejection of the intent: look its outcome up in the journal or the trade book."""


class PortfolioEnded(ControlPlaneError):
    """The portfolio's last run was terminated, failed, cancelled or timed out: it is not
    restarted implicitly (that would start it empty). Resume it from the last state its
    history holds (``--resume``) or discard it explicitly (``--new-portfolio``)."""


def reason_of(exc: BaseException) -> str:
    """A one-line reason for a connection or RPC failure."""
    text = str(exc)
    for needle, say in (
        ("Connection refused", "connection refused"),
        ("tcp connect error", "connection refused"),
        ("dns error", "the host name does not resolve"),
        ("timed out", "timed out"),
        ("Timeout", "timed out"),
    ):
        if needle in text:
            return say
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first[:200]


def rpc_error(workflow_id: str, exc: RPCError) -> ControlPlaneError:
    """The one-line error a failed RPC to ``workflow_id`` becomes."""
    if exc.status == RPCStatusCode.NOT_FOUND:
        return PortfolioNotRunning(f"{workflow_id} is not running; start it with `policy worker`")
    if exc.status in UNAVAILABLE:
        return ControlPlaneUnavailable(
            f"{workflow_id}: the Temporal server does not answer ({reason_of(exc)})"
        )
    return ControlPlaneError(f"{workflow_id}: {reason_of(exc)}")


def failure_message(exc: WorkflowUpdateFailedError) -> str:
    cause = exc.cause
    if isinstance(cause, FailureError) and cause.message:
        return cause.message
    return str(cause) or "refused"


__all__ = [
    "RETRY",
    "UNAVAILABLE",
    "ControlPlaneError",
    "ControlPlaneUnavailable",
    "PortfolioEnded",
    "PortfolioNotRunning",
    "RequestRefused",
    "RetryTooLate",
    "failure_message",
    "reason_of",
    "rpc_error",
]
