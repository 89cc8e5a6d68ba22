"""The namespaces an expression can read, and how a dotted name resolves.

Resolution is a pure function of the policy model, shared by the checker
(which reports what does not resolve), the reference interpreter and the
code generator (which read what does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from pydantic import BaseModel

from ..lang import valuetypes as t
from ..lang.valuetypes import Const, Type
from .model import PolicySpec

NAMESPACES = (
    "intent",
    "portfolio",
    "strategy",
    "symbol",
    "cohort",
    "mode",
    "params",
    "latch",
    "lock",
    "position",
    "group",
    "balance",
)

INTENT_FIELDS: dict[str, Type] = {
    "intent_id": t.STRING,
    "strategy": t.STRING,
    "symbol": t.STRING,
    "side": t.STRING,
    "requested_risk_abs": t.NUMBER,
    "requested_notional_abs": t.NULL_NUMBER,
    "template_id": t.NULL_STRING,
    "playbook_id": t.NULL_STRING,
    "regime_state": t.NULL_STRING,
    "correlation_bucket": t.NULL_STRING,
    "quote_currency": t.NULL_STRING,
    "reduce_only": t.BOOL,
    "risk_reducing": t.BOOL,
    "notional": t.NULL_NUMBER,  # `requested_notional_abs` by its short name
    "position_id": t.NULL_STRING,  # the open position (its opening intent's id) it reduces
}
# Derived per evaluation: the amount still requested after earlier clips, the cohort, and
# the intent's event time (its `timestamp`, read as a time).
INTENT_DERIVED: dict[str, Type] = {"risk": t.NUMBER, "cohort": t.STRING, "time": t.TIME}

# Live counters of a strategy, symbol or cohort bucket: risk, counts, the heat by side
# (`net_risk` is long minus short), the trading day's realized P&L and the loss streak.
LIVE_FIELDS: dict[str, Type] = {
    "active_risk": t.NUMBER,
    "reserved_risk": t.NUMBER,
    "heat": t.NUMBER,
    "open_positions": t.NUMBER,
    "active_trades": t.NUMBER,
    "long_risk": t.NUMBER,
    "short_risk": t.NUMBER,
    "net_risk": t.NUMBER,
    "day_realized_pnl": t.NUMBER,
    "loss_streak": t.NUMBER,
    # notional (size x price) reserved, filled (`active_`), both (`gross_`), by side and net,
    # and the filled positions' unrealized P&L at the last marks with its drawdown from peak
    "active_notional": t.NUMBER,
    "reserved_notional": t.NUMBER,
    "gross_notional": t.NUMBER,
    "long_notional": t.NUMBER,
    "short_notional": t.NUMBER,
    "net_notional": t.NUMBER,
    "unrealized_pnl": t.NUMBER,
    "unrealized_drawdown": t.NUMBER,
}

# The portfolio has every live counter of a bucket, and its equity, peak, drawdown and the
# trading day's starting equity and P&L.
PORTFOLIO_FIELDS: dict[str, Type] = {
    "equity": t.NUMBER,
    "peak_equity": t.NUMBER,
    "drawdown": t.NUMBER,
    **LIVE_FIELDS,
    "day_start_equity": t.NUMBER,
    "day_pnl": t.NUMBER,
}

# The open position an intent names (`position_id`): its id (the intent id that opened it),
# side, filled risk (`size`) and notional, when its intent was approved (`entry_time`; `age`:
# the seconds from then to the intent's timestamp), and its unrealized P&L.
POSITION_FIELDS: dict[str, Type] = {
    "id": t.STRING,
    "side": t.STRING,
    "size": t.NUMBER,
    "notional": t.NUMBER,
    "entry_time": t.TIME,
    "age": t.NUMBER,
    "unrealized_pnl": t.NUMBER,
}
# The order group an intent is decided in (a lone intent is a group of one): how many
# intents, their requested risk and notional in all (null when a member has no notional).
# Read from the intent (`intent.group_count`, ...): the control plane sets them on a member.
GROUP_FIELDS: dict[str, Type] = {"count": t.NUMBER, "risk": t.NUMBER, "notional": t.NULL_NUMBER}
# A currency's balance (`balance.USD.free`): null until a `balance` event reported it.
BALANCE_FIELDS: dict[str, Type] = {"free": t.NULL_NUMBER, "locked": t.NULL_NUMBER}
BALANCE = Type("map", item=t.NULL_NUMBER, fields=tuple(BALANCE_FIELDS.items()))
QUOTE = "quote"  # `balance.quote.free`: the balance of the intent's own quote currency

MODE_FIELDS: dict[str, Type] = {
    "name": t.STRING,
    "risk_multiplier": t.NUMBER,
    "flatten_only": t.BOOL,
    "source": t.STRING,
}

RESERVED_KEYS = frozenset({"name", "symbols", *LIVE_FIELDS})

INPUT_TYPES: dict[str, Type] = {
    "number": t.NUMBER,
    "string": t.STRING,
    "bool": t.BOOL,
    "time": t.TIME,
}


def input_reserved(name: str) -> bool:
    """A declared input may not shadow an intent field, a derived name or the model's own
    attributes (`model_dump`, `copy`, ...): it becomes an attribute of the intent model."""
    return (
        name in INTENT_FIELDS
        or name in INTENT_DERIVED
        or name == "timestamp"
        or name.startswith(("model_", "_"))
        or hasattr(BaseModel, name)
    )


# Names a scope cannot take: the built-in namespaces, and the ones declared elsewhere.
RESERVED_NAMESPACES = frozenset({*NAMESPACES, "latch", "decision"})

# The namespaces a window may be counted per (besides the declared scopes).
WINDOW_NAMESPACES = ("portfolio", "strategy", "symbol", "cohort")

# The intent fields a scope may be keyed by: the strings (a declared string input too).
SCOPE_KEYS = frozenset(
    k
    for k, v in INTENT_FIELDS.items()
    if v.kind == "string" and k not in ("intent_id", "side", "position_id")
)

# Which namespaces each kind of expression may read.
INTENT_CONTEXT = frozenset(NAMESPACES)
ENVELOPE_CONTEXT = frozenset({"portfolio", "mode", "params", "latch"})
MODE_CONTEXT = frozenset({"portfolio", "params", "latch"})
LATCH_CONTEXT = frozenset({"portfolio", "params"})  # a latch never reads another latch
# A policy's `properties:` (what `policy verify` proves) read the decision as well: names the
# checker types here and only the solver reads (the engine never evaluates a property).
PROPERTY_CONTEXT = INTENT_CONTEXT | {"decision"}
DECISION_FIELDS: dict[str, Type] = {
    "approved": t.BOOL,
    "approved_risk_abs": t.NUMBER,
    "rule": t.NULL_STRING,  # the deciding rule's id; null when none decided
}


class Source(Enum):
    """Where a name's value comes from: what each backend switches on.

    Every backend handles every member in a ``match`` ending in ``assert_never`` (the code
    generator, the interpreter, the heat caps, the linter's domains, the declarations a
    lint counts as read), so ``mypy`` lists each place a new source must be handled; see
    ARCHITECTURE.md ("Where to add things"). A plain ``Enum``, not a ``str``: comparing a
    source with a string is a type error, not a silent ``False``.
    """

    INTENT = "intent"  # an intent field or declared input: ``key``
    INTENT_RISK = "intent_risk"  # the amount still requested after earlier clips
    INTENT_COHORT = "intent_cohort"  # the intent's cohort
    INTENT_TIME = "intent_time"  # the intent's timestamp, as a time
    PORTFOLIO = "portfolio"  # a live portfolio value: ``key``
    STRATEGY_NAME = "strategy_name"
    STRATEGY_CFG = "strategy_cfg"  # the intent's strategy's configured ``key``
    STRATEGY_LIVE = "strategy_live"  # its live counter ``key``
    SYMBOL_NAME = "symbol_name"
    SYMBOL_CFG = "symbol_cfg"
    SYMBOL_LIVE = "symbol_live"
    COHORT_NAME = "cohort_name"
    COHORT_SYMBOLS = "cohort_symbols"
    COHORT_CFG = "cohort_cfg"
    COHORT_LIVE = "cohort_live"
    SCOPE_NAME = "scope_name"  # a declared scope's key value (with ``scope``)
    SCOPE_CFG = "scope_cfg"
    SCOPE_LIVE = "scope_live"
    WINDOW = "window"  # a rolling window's count (``scope``: the namespace it is counted per)
    MODE = "mode"  # a field of the mode in force
    PARAM = "param"  # a constant (``rest``: the path into a map)
    LATCH = "latch"  # whether a latch is set
    LOCK = "lock"  # whether a timed lock holds for the intent's key (``scope``: its namespace)
    POSITION = "position"  # a field of the open position the intent names (``position_id``)
    BALANCE = "balance"  # a currency's ``key`` (free, locked); ``scope``: it, or QUOTE


@dataclass(frozen=True, slots=True)
class Ref:
    """What a dotted name reads: its :class:`Source`, ``key`` the attribute or config key,
    ``rest`` the remaining path into a constant map, ``scope`` the declared scope (or a
    window's namespace)."""

    source: Source
    key: str
    type: Type
    rest: tuple[str, ...] = ()
    scope: str = ""  # for scope_name / scope_cfg / scope_live: the scope's name


@dataclass(frozen=True, slots=True)
class Unresolved:
    """Why a name did not resolve: the failing part's index and the candidates."""

    index: int
    candidates: tuple[str, ...]
    message: str | None = None


def _config_types(configs: list[dict[str, Const]]) -> dict[str, Type]:
    out: dict[str, Type] = {}
    for cfg in configs:
        for key, value in cfg.items():
            out.setdefault(key, t.type_of(value))
    return out


@dataclass(frozen=True)
class Scope:
    """The symbol table of one policy."""

    strategy_cfg: dict[str, Type]
    symbol_cfg: dict[str, Type]
    cohort_cfg: dict[str, Type]
    mode_cfg: dict[str, Type]
    params: dict[str, Type]
    inputs: dict[str, Type] = field(default_factory=dict)  # declared extra intent fields
    # declared scopes: name -> the types of its configured keys (a namespace like `symbol`)
    scopes: dict[str, dict[str, Type]] = field(default_factory=dict)
    # rolling windows by the namespace they are read in (`per`): namespace -> window names
    windows: dict[str, tuple[str, ...]] = field(default_factory=dict)
    latches: tuple[str, ...] = ()  # declared latches, read as `latch.<name>`
    locks: dict[str, str] = field(default_factory=dict)  # lock -> the namespace it keys
    currencies: tuple[str, ...] = ()  # declared: read as `balance.<CCY>.free`
    # resolve() is a pure function of the path: memoised (the interpreter resolves every
    # name it reads, and a fail-closed evaluation runs the whole chain through it).
    _resolved: dict[tuple[str, ...], Ref | Unresolved] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def of(cls, spec: PolicySpec) -> Scope:
        modes: dict[str, Type] = dict(MODE_FIELDS)
        for m in spec.modes.values():
            for key, value in m.attrs.items():
                modes.setdefault(key, t.type_of(value))
        return cls(
            strategy_cfg=_config_types(list(spec.strategies.values())),
            symbol_cfg=_config_types(list(spec.symbols.values())),
            cohort_cfg=_config_types([c.attrs for c in spec.cohorts.values()]),
            mode_cfg=modes,
            params={k: t.type_of(v) for k, v in spec.params.items()},
            inputs={
                name: Type(INPUT_TYPES[i.type].kind, nullable=i.default is None and not i.required)
                for name, i in spec.inputs.items()
                if not input_reserved(name)
            },
            scopes={
                name: _config_types(list(sc.values.values()))
                for name, sc in spec.scopes.items()
                if name not in RESERVED_NAMESPACES
            },
            windows={
                per: tuple(w.name for w in spec.windows.values() if w.per == per)
                for per in dict.fromkeys(w.per for w in spec.windows.values())
            },
            latches=tuple(spec.latches),
            locks={
                n: spec.windows[lk.window].per
                for n, lk in spec.locks.items()
                if lk.window in spec.windows
            },
            currencies=spec.currencies,
        )

    def fields(self, namespace: str) -> dict[str, Type]:
        """Every name readable under ``namespace`` with its type (its windows included)."""
        found = self._fields(namespace)
        windows = self.windows.get(namespace)
        if windows and (found or namespace in WINDOW_NAMESPACES):
            return {**found, **dict.fromkeys(windows, t.NUMBER)}
        return found

    def _fields(self, namespace: str) -> dict[str, Type]:
        match namespace:
            case "intent":
                return {**INTENT_FIELDS, **INTENT_DERIVED, **self.inputs}
            case "portfolio":
                return dict(PORTFOLIO_FIELDS)
            case "strategy":
                return {"name": t.STRING, **self.strategy_cfg, **LIVE_FIELDS}
            case "symbol":
                return {"name": t.STRING, **self.symbol_cfg, **LIVE_FIELDS}
            case "cohort":
                cfg = {"name": t.STRING, "symbols": t.list_of(t.STRING)}
                return {**cfg, **self.cohort_cfg, **LIVE_FIELDS}
            case "mode":
                return dict(self.mode_cfg)
            case "params":
                return dict(self.params)
            case "latch":
                return dict.fromkeys(self.latches, t.BOOL)
            case "lock":
                return dict.fromkeys(self.locks, t.BOOL)
            case "position":
                return dict(POSITION_FIELDS)
            case "group":
                return dict(GROUP_FIELDS)
            case "balance":
                return dict.fromkeys((*self.currencies, QUOTE), BALANCE)
        if namespace in self.scopes:
            return {"name": t.STRING, **self.scopes[namespace], **LIVE_FIELDS}
        return {}

    def resolve(self, path: tuple[str, ...]) -> Ref | Unresolved:
        """What the dotted name ``path`` reads, or why it reads nothing."""
        try:
            return self._resolved[path]
        except KeyError:
            found = self._resolve(path)
            self._resolved[path] = found
            return found

    def _resolve(self, path: tuple[str, ...]) -> Ref | Unresolved:
        root = path[0]
        if root not in NAMESPACES and root not in self.scopes:
            hints = [f"params.{root}"] if root in self.params else []
            return Unresolved(0, (*hints, *NAMESPACES, *self.scopes))
        if len(path) == 1:
            return Unresolved(
                0, (), f"`{root}` is a namespace; name one of its fields, as in `{root}.<name>`"
            )
        if root == "latch" and not self.latches:
            message = f"unknown name `{'.'.join(path[:2])}`: the policy declares no `latches`"
            return Unresolved(1, (), message)
        if root == "balance":
            return self._balance(path)
        key = path[1]
        fields = self.fields(root)
        if key not in fields:
            return Unresolved(1, tuple(f"{root}.{f}" for f in fields))
        kind = fields[key]
        if len(path) > 2 and not (root == "params" and kind.kind == "map"):
            return Unresolved(2, (), f"`{root}.{key}` is {_a(kind)} and has no fields")
        if key in self.windows.get(root, ()):
            return Ref(Source.WINDOW, key, kind, (), root)
        if root == "lock":
            return Ref(Source.LOCK, key, kind, (), self.locks[key])
        if root in self.scopes:
            return Ref(_member(root, key), key, kind, (), root)
        source = _source(root, key)
        if root == "group":
            return Ref(source, f"group_{key}", kind)
        if root == "params":
            rest = path[2:]
            for i, part in enumerate(rest):
                inner = kind.field(part)
                if inner is None:
                    known = [f"{'.'.join(path[: i + 2])}.{f}" for f, _ in kind.fields or ()]
                    return Unresolved(i + 2, tuple(known))
                kind = inner
            return Ref(source, key, kind, rest)
        return Ref(source, key, kind)

    def _balance(self, path: tuple[str, ...]) -> Ref | Unresolved:
        """`balance.<CCY>.free` / `.locked` of a declared currency (or `quote`)."""
        currency = path[1]
        if currency not in self.currencies and currency != QUOTE:
            if not self.currencies:
                message = f"unknown name `balance.{currency}`: the policy declares no `currencies`"
                return Unresolved(1, (), message)
            return Unresolved(1, tuple(f"balance.{c}" for c in (*self.currencies, QUOTE)))
        if len(path) != 3 or path[2] not in BALANCE_FIELDS:
            return Unresolved(2, tuple(f"balance.{currency}.{f}" for f in BALANCE_FIELDS))
        return Ref(Source.BALANCE, path[2], BALANCE_FIELDS[path[2]], (), currency)


def _a(kind: Type) -> str:
    text = str(kind)
    return ("an " if text[0] in "aeiou" else "a ") + text


_INTENT_DERIVED_SOURCE = {
    "risk": Source.INTENT_RISK,
    "cohort": Source.INTENT_COHORT,
    "time": Source.INTENT_TIME,
}
# A bucket namespace's (name, configured, live) sources; a declared scope is one too.
_BUCKETS = {
    "strategy": (Source.STRATEGY_NAME, Source.STRATEGY_CFG, Source.STRATEGY_LIVE),
    "symbol": (Source.SYMBOL_NAME, Source.SYMBOL_CFG, Source.SYMBOL_LIVE),
    "cohort": (Source.COHORT_NAME, Source.COHORT_CFG, Source.COHORT_LIVE),
}
_SCOPE_BUCKET = (Source.SCOPE_NAME, Source.SCOPE_CFG, Source.SCOPE_LIVE)
_PLAIN = {"portfolio": Source.PORTFOLIO, "mode": Source.MODE, "params": Source.PARAM}


def _member(root: str, key: str) -> Source:
    """The source of ``key`` in a bucket namespace (a declared scope's when not built in)."""
    name, cfg, live = _BUCKETS.get(root, _SCOPE_BUCKET)
    if key == "name":
        return name
    return live if key in LIVE_FIELDS else cfg


def live_source(namespace: str) -> Source:
    """The source of a live counter of ``namespace`` (a bucket's or a declared scope's)."""
    return _BUCKETS.get(namespace, _SCOPE_BUCKET)[2]


def _source(root: str, key: str) -> Source:
    if root == "group":  # read from the intent: `group.count` is `intent.group_count`
        return Source.INTENT
    if root == "intent":
        return _INTENT_DERIVED_SOURCE.get(key, Source.INTENT)
    if root == "cohort" and key == "symbols":
        return Source.COHORT_SYMBOLS
    if root in _BUCKETS:
        return _member(root, key)
    if root == "latch":
        return Source.LATCH
    if root == "position":
        return Source.POSITION
    return _PLAIN[root]
