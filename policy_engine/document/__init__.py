"""The policy document: YAML with positions, the schema, the model, names and the checker.

Layer 2, above :mod:`policy_engine.lang`: it turns policy text into a
checked policy (:class:`~.checker.CheckedPolicy`) or positioned diagnostics,
and knows nothing of evaluation, portfolios or the command line.
"""
