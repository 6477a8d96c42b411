"""Helpers the test tree shares: polling, doorfix as a subprocess, config files, the demo harness.

Imported as ``support`` (``from support.polling import wait_for``), like ``faultkit`` and
``reportkit``: ``tests/`` has no ``__init__.py``, so pytest (rootdir ``pyproject.toml``, the
default ``prepend`` import mode) puts ``tests/`` on ``sys.path`` when it loads
``tests/conftest.py``, which it does before any test module under ``tests/``, whatever paths
are given and in whatever order. ``tests.support`` would need the repository root on
``sys.path``, which the ``pytest`` script (unlike ``python -m pytest``) does not give.

* :mod:`support.polling`: ``wait_for``, a condition polled until a deadline;
* :mod:`support.processes`: ``python -m doorfix`` as a subprocess with the sandbox's secrets,
  and the daemon with its JSON log lines read as they come;
* :mod:`support.configs`: config files pointing at a served sandbox;
* :mod:`support.demo`: the demo world in process on a manual clock, and an agent on it.
"""
