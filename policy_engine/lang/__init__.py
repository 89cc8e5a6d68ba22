"""The expression language: syntax, grammar, parsers, value types and the function registry.

The lowest layer: it knows nothing of policies, YAML or portfolios.
"""
