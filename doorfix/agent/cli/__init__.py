"""The command line: the typer app and its command groups.

Owns ``app`` (the ``doorfix`` command: run, diagnose, sandbox, and the entry point),
``reports`` (report, history, config check), ``daemon`` (daemon and demo), ``checks`` (what
``config check`` verifies), ``session`` (opening an agent from a config, or on the embedded
sandbox when there is none) and ``demo``.

May import everything below it: daemon, reports, engine, journal, runtime, config, and the
sandbox for the embedded mode. Nothing imports the CLI.
"""
