"""The journal file: one writer, never truncated, hash-chained, torn lines repaired
explicitly, durability modes, and a journal that vanishes or fails stops every decision."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy_engine import PortfolioController, replay
from policy_engine.cli import cli
from policy_engine.control.chain import GENESIS, seal
from policy_engine.control.durable import PATH_CHECK_EVERY
from policy_engine.control.events import TickEvent, canonical
from policy_engine.control.journal import (
    Durability,
    JournalError,
    JournalExistsError,
    JournalLockedError,
    JournalWriteError,
    JournalWriter,
    TornJournalError,
    journal_schema,
    loads,
    read_events,
)
from policy_engine.control.verify import JournalIntegrityError, repair, scan

from support.workload import journaled_run, policy_versions

ROOT = Path(__file__).resolve().parent.parent
PORTFOLIO = ROOT / "policies" / "portfolio.yaml"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def intent(k: int, risk: float = 100, seconds: float = 0) -> dict[str, Any]:
    return {
        "intent_id": f"i{k}",
        "strategy": "SCALPER" if k % 2 else "MOMENTUM",
        "symbol": ["BTC-USD", "ETH-USD", "SOL-USD"][k % 3],
        "side": "long",
        "requested_risk_abs": risk,
        "timestamp": (T0 + timedelta(seconds=seconds or k)).isoformat(),
    }


def small_journal(path: Path, n: int = 12, **kw: Any) -> list[dict[str, Any]]:
    """A closed journal of ``n`` intents and a few fills; returns the decision records."""
    records: list[dict[str, Any]] = []
    with PortfolioController(
        PORTFOLIO, equity=100_000, journal=path, records=records, durability="off", **kw
    ) as ctl:
        for k in range(n):
            ctl.request_allocation(intent(k, 150 + 10 * k))
            if k % 3 == 0:
                ctl.on_fill_update(
                    {
                        "intent_id": f"i{k}",
                        "fill_id": "f",
                        "filled_risk_abs": 100,
                        "timestamp": (T0 + timedelta(seconds=k)).isoformat(),
                    }
                )
    return [r for r in records if r["kind"] == "decision" and r["seq"] is not None]


# --- one writer, never truncated -----------------------------------------------------------


def test_a_second_writer_is_refused_in_this_process_and_in_another(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    with PortfolioController(PORTFOLIO, equity=1_000, journal=path) as ctl:
        with pytest.raises(JournalLockedError, match="locked by another writer"):
            PortfolioController(PORTFOLIO, equity=1_000, journal=path)
        script = textwrap.dedent(
            f"""
            from policy_engine import PortfolioController
            from policy_engine.control.journal import JournalLockedError
            try:
                PortfolioController.recover({str(path)!r})
            except JournalLockedError as exc:
                print("refused:", exc)
            """
        )
        out = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        )
        assert out.stdout.startswith("refused: journal ") and "locked" in out.stdout
        ctl.request_allocation(intent(1))  # the first writer is unaffected
    assert [e["type"] for e in read_events(path)] == ["policy", "equity", "intent"]


def test_an_existing_journal_is_never_truncated(tmp_path: Path) -> None:
    """A new controller (or `policy run --journal`) on a non-empty journal is refused and
    points at recovery; the bytes are untouched. An empty file is fine."""
    path = tmp_path / "j.jsonl"
    small_journal(path)
    before = path.read_bytes()
    with pytest.raises(JournalExistsError, match=r"policy recover .*j\.jsonl"):
        PortfolioController(PORTFOLIO, equity=1_000, journal=path)
    result = CliRunner().invoke(
        cli,
        ["run", str(PORTFOLIO), str(ROOT / "examples" / "events.jsonl"), "--journal", str(path)],
    )
    assert result.exit_code == 2
    assert "never overwrites" in result.output and "policy recover" in result.output
    assert path.read_bytes() == before
    empty = tmp_path / "empty.jsonl"
    empty.touch()
    with PortfolioController(PORTFOLIO, equity=1_000, journal=empty) as ctl:
        ctl.request_allocation(intent(1))
    assert len(list(read_events(empty))) == 3


def test_a_journal_that_cannot_be_opened_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match=r"cannot open journal .* for appending"):
        PortfolioController(PORTFOLIO, journal=tmp_path / "missing-dir" / "j.jsonl")
    with pytest.raises(JournalError, match="cannot open journal"):
        PortfolioController(PORTFOLIO, journal=tmp_path)  # a directory


# --- the chain -----------------------------------------------------------------------------


def test_seal_and_chain_format() -> None:
    line, chain = seal(b'{"type":"tick"}', GENESIS)
    assert line == b'{"type":"tick","chain":"' + chain.encode() + b'"}\n'
    assert json.loads(line) == {"type": "tick", "chain": chain}
    with pytest.raises(ValueError):
        seal(b"{}", GENESIS)


@pytest.fixture(scope="module")
def chained(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A small closed journal (with a checkpoint every 10 events), as bytes."""
    path = tmp_path_factory.mktemp("chain") / "j.jsonl"
    small_journal(path, 8, checkpoint_every=10)
    data = path.read_bytes()
    assert b'"type":"checkpoint"' in data
    return data


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_any_edited_byte_is_detected(chained: bytes, tmp_path: Path, data: st.DataObject) -> None:
    """Change any one byte anywhere (or insert or delete one): the journal no longer
    verifies: a broken link, or a torn last line."""
    pos = data.draw(st.integers(0, len(chained) - 1), label="position")
    how = data.draw(st.sampled_from(["replace", "insert", "delete"]), label="edit")
    if how == "replace":
        byte: int = data.draw(st.integers(0, 255).filter(lambda b: b != chained[pos]))
        edited = chained[:pos] + bytes([byte]) + chained[pos + 1 :]
    elif how == "insert":
        edited = chained[:pos] + bytes([data.draw(st.integers(0, 255))]) + chained[pos:]
    else:
        edited = chained[:pos] + chained[pos + 1 :]
    path = tmp_path / f"edited-{pos}.jsonl"
    path.write_bytes(edited)
    try:
        result = scan(path)
    except JournalIntegrityError:
        return
    assert result.torn, (pos, how)  # only the final newline can make it look merely torn


def test_verify_catches_the_edits_plain_replay_misses(tmp_path: Path) -> None:
    """An edited digit in a risk amount, and edited policy text with its content hash
    recomputed, both replay without complaint; `policy replay --verify` refuses both."""
    path = tmp_path / "j.jsonl"
    small_journal(path)
    lines = path.read_bytes().splitlines(keepends=True)
    amount = next(i for i, x in enumerate(lines) if b'"requested_risk_abs":200' in x)
    edited = lines.copy()
    edited[amount] = lines[amount].replace(b'"requested_risk_abs":200', b'"requested_risk_abs":900')
    digit = tmp_path / "digit.jsonl"
    digit.write_bytes(b"".join(edited))

    from policy_engine import load_policy_text

    policy = json.loads(lines[0])
    text = policy["source"].replace("heat_cap: 6%", "heat_cap: 60%")
    assert text != policy["source"]
    policy.update(source=text, hash=load_policy_text(text, "p.yaml").content_hash)
    chain = policy.pop("chain")
    forged = json.dumps(policy, separators=(",", ":"), ensure_ascii=False)
    forged_line = forged[:-1] + f',"chain":"{chain}"}}\n'
    text_edit = tmp_path / "policy.jsonl"
    text_edit.write_bytes(forged_line.encode() + b"".join(lines[1:]))

    runner = CliRunner()
    for bad, line_no in ((digit, amount + 1), (text_edit, 1)):
        plain = runner.invoke(cli, ["replay", str(bad)])
        assert plain.exit_code == 0 and "reproduced" in plain.output
        verified = runner.invoke(cli, ["replay", str(bad), "--verify"])
        assert verified.exit_code == 1, verified.output
        assert f"{bad}:{line_no}: the line does not match its chain value" in verified.output
        assert "verification failed" in verified.output
    good = runner.invoke(cli, ["replay", str(path), "--verify"])
    assert good.exit_code == 0, good.output
    head = scan(path).head
    assert head is not None and "chain verified: " in good.output and head in good.output


def test_a_journal_written_before_chaining_replays_but_does_not_verify(tmp_path: Path) -> None:
    path = tmp_path / "chained.jsonl"
    small_journal(path)
    old = tmp_path / "old.jsonl"
    old.write_text(
        "".join(
            json.dumps(e, separators=(",", ":"), ensure_ascii=False) + "\n"
            for e in read_events(path)
        )
    )
    assert [canonical(r) for r in replay(old)] == [canonical(r) for r in replay(path)]
    result = CliRunner().invoke(cli, ["replay", str(old), "--verify"])
    assert result.exit_code == 1
    assert "is unchained (written before journals were chained)" in result.output
    assert scan(old).chained is False


# --- torn last line ------------------------------------------------------------------------


def test_a_torn_last_line_is_reported_and_repaired_explicitly(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    decisions = small_journal(path)
    whole = path.read_bytes()
    torn_at = len(whole) - 40  # the closing checkpoint, cut short
    path.write_bytes(whole[:torn_at])
    events = read_events(path)
    with pytest.raises(TornJournalError, match=r"j\.jsonl:\d+: the last line is incomplete"):
        list(events)
    runner = CliRunner()
    out = runner.invoke(cli, ["replay", str(path)])
    assert out.exit_code == 1
    assert f"drop it with `policy journal repair {path}`" in out.output
    assert path.read_bytes() == whole[:torn_at]  # never repaired silently
    with pytest.raises(TornJournalError):
        PortfolioController.recover(path)

    fixed = runner.invoke(cli, ["journal", "repair", str(path)])
    assert fixed.exit_code == 0, fixed.output
    assert "dropped the torn line" in fixed.output and "kept in" in fixed.output
    kept = Path(f"{path}.torn").read_bytes()
    assert path.read_bytes() + kept == whole[:torn_at]
    assert path.read_bytes().endswith(b"\n")
    assert [canonical(r) for r in replay(path)] == [canonical(r) for r in decisions]
    again = runner.invoke(cli, ["journal", "repair", str(path)])
    assert again.exit_code == 0 and "nothing to repair" in again.output


def test_an_events_file_may_end_without_a_newline_and_a_journal_feeds_policy_run(
    tmp_path: Path,
) -> None:
    """Only a journal's last line must be whole: an events file written by hand may lack
    its final newline. A journal (chain values, checkpoint lines) is also an events file."""
    events = tmp_path / "events.jsonl"
    events.write_text((ROOT / "tests" / "data" / "cli_events.jsonl").read_text().rstrip("\n"))
    plain = CliRunner().invoke(cli, ["run", str(PORTFOLIO), str(events)])
    assert plain.exit_code == 0, plain.output
    journal = tmp_path / "j.jsonl"
    small_journal(journal, 4, checkpoint_every=3)
    assert b'"type":"checkpoint"' in journal.read_bytes()
    fed = CliRunner().invoke(cli, ["run", str(PORTFOLIO), str(journal)])
    assert fed.exit_code == 0, fed.output
    lines = journal.read_text().splitlines()
    shown = [x.split()[:2] for x in fed.output.splitlines() if x.startswith("#")]
    assert shown
    for number, what in shown:  # a decision's line, or a fill's, cancel's or close's
        kind = what if what in ("fill", "cancel", "close") else "intent"
        assert f'"type":"{kind}"' in lines[int(number[1:]) - 1]


def test_repair_refuses_a_damaged_journal_and_a_live_one(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    small_journal(path)
    data = path.read_bytes()
    damaged = data.replace(b'"requested_risk_abs":150', b'"requested_risk_abs":151', 1)
    path.write_bytes(damaged[:-10])
    out = CliRunner().invoke(cli, ["journal", "repair", str(path)])
    assert out.exit_code == 1 and "not repaired" in out.output
    assert path.read_bytes() == damaged[:-10]
    live = tmp_path / "live.jsonl"
    with (
        PortfolioController(PORTFOLIO, journal=live),
        pytest.raises(JournalLockedError, match="live writer"),
    ):
        repair(live)


# --- durability ----------------------------------------------------------------------------


def test_durability_modes_bound_the_unsynced_lines(tmp_path: Path) -> None:
    """`event` syncs every line before the event is applied; `batch` after N lines or T ms
    of event time; `off` never (until asked); close syncs every mode but `off`."""

    def writer(name: str, durability: Durability | str) -> JournalWriter:
        return JournalWriter(tmp_path / f"{name}.jsonl", durability=durability)

    def tick(s: float) -> dict[str, Any]:
        return {"type": "tick", "timestamp": (T0 + timedelta(seconds=s)).isoformat()}

    each = writer("event", "event")
    for s in range(3):
        each.write(tick(s))
        assert each.unsynced == 0
    each.close()

    batch = writer("batch", Durability("batch", events=4, ms=1_000))
    seen = []
    for t in (0, 0.1, 0.2, 0.3, 0.4, 0.5, 2.0, 2.1):
        batch.write(tick(t))
        seen.append(batch.unsynced)
    # 4 lines fill a batch; then the line 1.5 s after the batch's first closes it
    assert seen == [1, 2, 3, 0, 1, 2, 0, 1]
    batch.close()
    assert batch.unsynced == 0
    # The same through a shell's typed events (their timestamps datetimes, not text).
    typed = writer("typed", Durability("batch", events=4, ms=1_000))
    seen = []
    for t in (0, 0.1, 0.2, 0.3, 0.4, 0.5, 2.0, 2.1):
        typed.write_event(TickEvent(T0 + timedelta(seconds=t)))
        seen.append(typed.unsynced)
    assert seen == [1, 2, 3, 0, 1, 2, 0, 1]
    typed.close()
    same = (tmp_path / "typed.jsonl").read_bytes() == (tmp_path / "batch.jsonl").read_bytes()
    assert same  # the same lines, byte for byte

    off = writer("off", "off")
    for s in range(300):
        off.write(tick(s))
    assert off.unsynced == 300
    off.sync()
    assert off.unsynced == 0
    off.close()
    with pytest.raises(ValueError, match="event, batch or off"):
        writer("bad", "sometimes")


# --- fail closed ---------------------------------------------------------------------------


def _vanish(path: Path, how: str) -> None:
    if how == "deleted":
        path.unlink()
    elif how == "renamed":
        path.rename(path.with_name("moved.jsonl"))
    else:
        path.rename(path.with_name("moved.jsonl"))
        path.write_text("")


def _refuses_everything(ctl: PortfolioController) -> None:
    for call in (
        lambda: ctl.request_allocation(intent(3)),
        lambda: ctl.close_position("i1", T0),
        lambda: ctl.update_equity(90_000, T0),
        lambda: ctl.advance_time(T0 + timedelta(days=1)),
    ):
        with pytest.raises(JournalWriteError, match="failed earlier"):
            call()


@pytest.mark.parametrize("how", ["deleted", "renamed", "replaced"])
def test_a_vanished_journal_stops_the_next_decision_with_durability_event(
    tmp_path: Path, how: str
) -> None:
    """With durability `event` the path is checked before every line."""
    path = tmp_path / "j.jsonl"
    ctl = PortfolioController(PORTFOLIO, equity=100_000, journal=path, durability="event")
    assert ctl.request_allocation(intent(1)).approved
    _vanish(path, how)
    before = ctl.core.snapshot()
    with pytest.raises(JournalWriteError, match="deleted or renamed"):
        ctl.request_allocation(intent(2))
    _refuses_everything(ctl)
    assert ctl.core.snapshot() == before  # nothing was decided or applied unrecorded
    ctl.close()


@pytest.mark.parametrize("durability", ["off", "batch"])
@pytest.mark.parametrize("how", ["deleted", "renamed", "replaced"])
def test_a_vanished_journal_stops_decisions_within_a_bounded_number_of_lines(
    tmp_path: Path, how: str, durability: str
) -> None:
    """With `off` and `batch` the path is checked before every PATH_CHECK_EVERY-th line (a
    stat costs as much as the line's hash and write): at most PATH_CHECK_EVERY - 1 events are
    accepted after the move, then every event is refused and nothing more is applied."""
    path = tmp_path / "j.jsonl"
    mode = Durability("batch", events=10_000, ms=1e9) if durability == "batch" else "off"
    ctl = PortfolioController(PORTFOLIO, equity=100_000, journal=path, durability=mode)
    assert ctl.request_allocation(intent(1)).approved
    _vanish(path, how)
    accepted = 0
    before = ctl.core.snapshot()
    with pytest.raises(JournalWriteError, match="deleted or renamed"):
        while True:
            before = ctl.core.snapshot()
            ctl.advance_time(T0 + timedelta(seconds=accepted))
            accepted += 1
    assert accepted < PATH_CHECK_EVERY
    _refuses_everything(ctl)
    assert ctl.core.snapshot() == before  # the refused event was not applied
    ctl.close()


@pytest.mark.parametrize("how", ["deleted", "renamed", "replaced"])
def test_a_sync_checks_the_path_first(tmp_path: Path, how: str) -> None:
    """A batch's sync (and an explicit one) checks the path before it: the lines it makes
    durable are under the journal's name, or the writer fails closed."""
    path = tmp_path / "j.jsonl"
    ctl = PortfolioController(PORTFOLIO, equity=100_000, journal=path, durability="batch")
    assert ctl.request_allocation(intent(1)).approved
    _vanish(path, how)
    writer = ctl.journal
    assert isinstance(writer, JournalWriter)
    with pytest.raises(JournalWriteError, match="deleted or renamed"):
        writer.sync()
    _refuses_everything(ctl)
    ctl.close()


def test_a_journal_that_runs_out_of_space_stops_decisions_and_keeps_what_it_has(
    tmp_path: Path,
) -> None:
    """A real write failure (the file size limit of the process, EFBIG): the controller
    refuses the event that could not be written and every later one; every decision it
    did return is in the journal, which replays to exactly those decisions."""
    path = tmp_path / "j.jsonl"
    script = textwrap.dedent(
        f"""
        import json, resource, signal
        from policy_engine import PortfolioController
        from policy_engine.control.journal import JournalWriteError
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        ctl = PortfolioController({str(PORTFOLIO)!r}, equity=100_000, journal={str(path)!r},
                                  records=(records := []), checkpoint_every=None)
        resource.setrlimit(resource.RLIMIT_FSIZE, (12_000, 12_000))
        refused = 0
        for k in range(200):
            try:
                ctl.request_allocation({{
                    "intent_id": f"i{{k}}", "strategy": "SCALPER", "symbol": "BTC-USD",
                    "side": "long", "requested_risk_abs": 1 + k,
                    "timestamp": "2026-03-02T09:00:00+00:00"}})
            except JournalWriteError as exc:
                refused += 1
                message = str(exc)
        print(json.dumps({{"refused": refused, "message": message,
                           "decisions": [r for r in records if r["kind"] == "decision"
                                         and r["seq"] is not None]}}))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert 0 < result["refused"] < 200
    assert "errno 27" in str(result["message"])  # EFBIG
    decided = result["decisions"]
    assert len(decided) + result["refused"] == 200
    # The failed write may have left a partial line: reported as torn, repaired, replayed.
    if scan(path).torn:
        repair(path)
    assert [canonical(r) for r in replay(path)] == [canonical(r) for r in decided]


# --- reading -------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(JSON_VALUES)
def test_the_fast_parser_reads_exactly_what_json_reads(value: Any) -> None:
    """orjson reads journal lines, except where it would differ from the standard parser
    (integers beyond 64 bits, infinities): those fall back, so types and values agree."""
    body = json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
    try:
        expected = json.loads(body)
    except ValueError:
        return
    got = loads(body)
    assert got == expected and repr(got) == repr(expected)


def test_the_fast_parser_keeps_big_integers_and_special_floats() -> None:
    assert loads(b'{"a":123456789012345678901234567890}') == {"a": 123456789012345678901234567890}
    assert type(loads(b"[1e400]")[0]) is float
    assert loads(b'{"a":NaN}')["a"] != loads(b'{"a":NaN}')["a"]


def test_a_long_journal_with_reloads_verifies_across_checkpoints(tmp_path: Path) -> None:
    """2,000 mixed events with a checkpoint every 300: the chain verifies, every checkpoint
    equals the replayed state, and records replay byte for byte."""
    path = tmp_path / "j.jsonl"
    records = journaled_run(path, policy_versions(tmp_path), 2_000, 300)
    result = CliRunner().invoke(cli, ["replay", str(path), "--verify", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.splitlines()[-1])["summary"]
    assert summary["journal"]["checkpoints"] >= 4 and summary["journal"]["chained"]
    assert [canonical(r) for r in replay(path, lifecycle=True)] == [
        canonical(r) for r in records if r.get("seq") is not None
    ]
    assert os.path.getsize(path) == scan(path).size
    # Every line as written (chain value, checkpoints) follows the published schema.
    validator = jsonschema.Draft202012Validator(journal_schema())
    kinds = set()
    for raw in path.read_bytes().splitlines():
        line = json.loads(raw)
        assert validator.is_valid(line), line.get("type")
        kinds.add(line["type"])
    assert "checkpoint" in kinds and len(kinds) == 9
    assert not validator.is_valid({"type": "tick", "timestamp": T0.isoformat(), "chain": "x"})
