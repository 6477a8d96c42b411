"""``python -m doorfix``: the same as the ``doorfix`` command."""

from __future__ import annotations

from doorfix.agent.cli.app import main

main()
