"""Loading a small policy written inline in a test and reading what the loader says of it."""

from __future__ import annotations

import textwrap

from policy_engine import PolicyError, load_policy_text

HEADER = "api_version: policy-engine/v1\nname: t\nversion: 1\n"


def problems(body: str) -> list[str]:
    """The concise diagnostics of HEADER + ``body`` (dedented), as `t.yaml`; [] if it loads."""
    try:
        load_policy_text(HEADER + textwrap.dedent(body), "t.yaml")
    except PolicyError as exc:
        return [x.format() for x in exc.diagnostics]
    return []
