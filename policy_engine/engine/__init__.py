"""The engine: a checked policy compiled into a rule chain, evaluated, explained.

Layer 3, above :mod:`policy_engine.document`: :class:`~.policy.Policy` (the
compiled chain and the envelope), :class:`~.verdict.Verdict` (an outcome that
explains itself), the reference interpreter, the code generators, the one
decision builder and the public data contracts. Pure: no I/O beyond reading
a policy file when asked to, no clock, no randomness.
"""
