"""Decision tests for policies: the `*_test.yaml` format, its runner and coverage.

Layer 5, above :mod:`policy_engine.control` (a scenario runs through a real
controller): :mod:`.suite` reads a test file, :mod:`.runner` runs its cases
and scenarios against the policy and records coverage. ``policy test`` is the
command line of it; docs/testing.md is the format's reference.
"""
