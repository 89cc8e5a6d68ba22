"""``python -m policy_engine.cli``: the ``policy`` command."""

from . import main

main()
