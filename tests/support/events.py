"""Event dicts for tests: an intent with the usual fields, anything else as given."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def intent(iid: str, ts: datetime | str, **fields: Any) -> dict[str, Any]:
    """An intent of strategy S on BTC-USD, long, 100 of risk (``fields`` override any)."""
    return {
        "intent_id": iid,
        "strategy": "S",
        "symbol": "BTC-USD",
        "side": "long",
        "requested_risk_abs": 100,
        "timestamp": ts.isoformat() if isinstance(ts, datetime) else ts,
        **fields,
    }
