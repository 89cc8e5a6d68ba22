"""Analysis: what a careful reviewer would catch (domain lints) and what changed (diff).

Layer 4, above :mod:`policy_engine.engine`; used by ``policy-check`` only,
never on the decision path.
"""
