"""What a forger with write access to a journal file can do: rewrite a line and re-seal the
hash chain from there (the tests prove verification still catches what matters)."""

from __future__ import annotations

import json
from typing import Any

from policy_engine.control.chain import GENESIS, seal, unseal


def reseal(lines: list[bytes], start: int) -> list[bytes]:
    """Recompute the chain from line ``start`` on (what a forger with the file would do)."""
    out = lines[:start]
    prev = unseal(lines[start - 1])[1] if start else GENESIS
    for line in lines[start:]:
        body = unseal(line)[0]
        assert prev is not None
        sealed, prev = seal(body, prev)
        out.append(sealed)
    return out


def sealable(event: dict[str, Any]) -> bytes:
    """A journal line for ``event`` with a placeholder chain value (for :func:`reseal`)."""
    body = json.dumps(event, separators=(",", ":")).encode()
    return body[:-1] + b',"chain":"' + b"0" * 64 + b'"}\n'
