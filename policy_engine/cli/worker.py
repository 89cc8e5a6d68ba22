"""``policy worker``: run a Temporal worker for a portfolio's shared control workflow.

Loads the policy (diagnostics and exit 1 if it does not load), connects to the
Temporal server (exit 2 with one line when it cannot be reached), polls the
task queue, starts the portfolio's control workflow with the policy's text and
hash if it is not running, and runs until SIGINT or SIGTERM (exit 0). The
Temporal SDK is imported only here, when the command runs: without the
``temporal`` extra the command says how to install it.
"""

from __future__ import annotations

import asyncio
import signal

import click

from .common import UsageError, load_or_report

DEFAULT_TASK_QUEUE = "policy-engine"  # policy_engine.temporal.protocol.DEFAULT_TASK_QUEUE
_ran: list[bool] = []  # set once this command has started the Temporal SDK in this process


def ran_the_sdk() -> bool:
    """Whether ``policy worker`` ran the Temporal SDK in this process (see ``cli.main``)."""
    return bool(_ran)


@click.command("worker")
@click.argument("policy_path", metavar="POLICY", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--address",
    default="127.0.0.1:7233",
    show_default=True,
    help="The Temporal server (HOST:PORT).",
)
@click.option(
    "--portfolio",
    required=True,
    help="The portfolio's name; its workflow id is portfolio-control/NAME.",
)
@click.option(
    "--equity",
    type=float,
    default=None,
    help="Opening equity: required when this worker starts the workflow (it is not "
    "running), ignored when it serves a running one.",
)
@click.option("--task-queue", default=DEFAULT_TASK_QUEUE, show_default=True)
@click.option("--namespace", default="default", show_default=True)
@click.option(
    "--events-per-run",
    type=click.IntRange(min=1, max=1500),
    default=500,
    show_default=True,
    help="Continue-as-new after this many accepted events (bounds the history; "
    "Temporal allows 2,000 Updates in one run).",
)
@click.option(
    "--task-timeout",
    type=click.FloatRange(min=1),
    default=None,
    help="Workflow task timeout in seconds, if this worker starts the workflow "
    "(Temporal's default: 10). After a worker crash, work resumes within it.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(min=0, max=65535),
    default=None,
    help="Serve Prometheus metrics of the workflow's live state on this port (0: any free "
    "port; the ready line names it).",
)
@click.option(
    "--metrics-addr",
    default="127.0.0.1",
    show_default=True,
    help="The address the metrics endpoint listens on.",
)
@click.option(
    "--sticky-timeout",
    type=click.FloatRange(min=1),
    default=5.0,
    show_default=True,
    help="Seconds a task waits for this worker before any worker may take it.",
)
@click.option(
    "--resume",
    is_flag=True,
    help="The portfolio's last run was terminated or failed: continue from the exact state "
    "its history holds (its book, subscribers and idempotency memory).",
)
@click.option(
    "--new-portfolio",
    is_flag=True,
    help="The portfolio's last run was terminated or failed: DISCARD its book and start "
    "afresh with --equity.",
)
@click.option(
    "--startup-timeout",
    type=click.FloatRange(min=1),
    default=60.0,
    show_default=True,
    help="Seconds start-up keeps retrying while the server answers but the workflow does "
    "not yet (after a crash its task must time out first).",
)
def worker_command(
    policy_path: str,
    address: str,
    portfolio: str,
    equity: float | None,
    task_queue: str,
    namespace: str,
    events_per_run: int,
    task_timeout: float | None,
    sticky_timeout: float,
    metrics_port: int | None,
    metrics_addr: str,
    resume: bool,
    new_portfolio: bool,
    startup_timeout: float,
) -> None:
    """Run a worker for a portfolio's shared control workflow on Temporal.

    Starts the workflow portfolio-control/NAME with POLICY (its text and hash) and
    --equity if it is not running; otherwise serves the running one, whatever
    policy it holds (change it with PortfolioClient.reload). Stops cleanly on
    SIGINT or SIGTERM. Exit 0 when stopped, 1 if POLICY does not load, 2 if the
    server cannot be reached. With --metrics-port, /metrics serves the workflow's live
    state (heat, caps, reserved and active risk, mode, envelope, equity), read with a
    Query at each scrape. A portfolio whose last run was terminated or failed is never
    restarted implicitly: give --resume (continue from its last state) or
    --new-portfolio (discard its book).
    """
    policy = load_or_report(policy_path)
    try:
        from ..temporal.client import ControlPlaneError
        from ..temporal.protocol import workflow_id
        from ..temporal.worker import Served, serve
    except ImportError as exc:
        raise UsageError(
            f"the Temporal extra is not installed ({exc.name}): "
            "pip install 'policy-engine[temporal]'"
        ) from None
    try:
        workflow_id(portfolio)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if resume and new_portfolio:
        raise UsageError("--resume and --new-portfolio exclude each other")
    if new_portfolio and equity is None:
        raise UsageError("--new-portfolio starts afresh: give its opening --equity")

    def ready(served: Served) -> None:
        running = served.running_policy
        what = "started" if served.started else "already running"
        click.echo(
            f"worker for {served.workflow_id} on task queue {task_queue} at {address}: "
            f"workflow {what} with {running['name']} v{running['version']} ({running['hash']})"
        )
        if running["hash"] != policy.content_hash:
            click.echo(
                f"note: {policy_path} is {policy.name} v{policy.version} ({policy.content_hash}), "
                "not the policy in force; reload it to change the running workflow",
                err=True,
            )
        if endpoint is not None:
            click.echo(f"metrics on http://{metrics_addr}:{endpoint.port}/metrics")
        click.echo("stop with Ctrl-C (SIGINT) or SIGTERM")

    metrics, endpoint = None, None
    if metrics_port is not None:
        from prometheus_client import CollectorRegistry

        from ..control.metrics import ControlMetrics, serve_metrics

        registry = CollectorRegistry()
        metrics = ControlMetrics(registry)
        try:
            endpoint = serve_metrics(registry, metrics_port, metrics_addr)
        except OSError as exc:
            raise UsageError(
                f"cannot serve metrics on {metrics_addr}:{metrics_port}: {exc.strerror}"
            ) from None

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(
            address,
            policy,
            portfolio=portfolio,
            equity=equity,
            task_queue=task_queue,
            namespace=namespace,
            stop=stop,
            ready=ready,
            events_per_run=events_per_run,
            task_timeout=task_timeout,
            sticky_timeout=sticky_timeout,
            metrics=metrics,
            resume=resume,
            new_portfolio=new_portfolio,
            startup_timeout=startup_timeout,
        )

    _ran.append(True)
    try:
        asyncio.run(main())
    except ControlPlaneError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
    finally:
        if endpoint is not None:
            endpoint.close()
    click.echo("worker stopped")
