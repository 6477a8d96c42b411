"""The unattended daemon: the schedule, the health and metrics endpoint.

Owns ``scheduler`` (APScheduler 3.11 on the single node: every enabled playbook on its
schedule, never two runs at once, missed runs coalesced, signals, retention pruning),
``endpoint`` (the Starlette app on 127.0.0.1: ``/healthz``, ``/metrics``), ``console`` (the
supervisors' console: Jinja2 pages in ``templates/`` on the same app) with ``access`` (its
tokens, sessions and CSRF) and ``metrics`` (the Prometheus registry).

May import: the engine, the reports, the journal, the config. Never the CLI.
"""
