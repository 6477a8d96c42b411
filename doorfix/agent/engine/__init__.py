"""The engine: one run of a playbook, from collecting events to recording outcomes.

Owns :func:`run.run_once` (collect -> diagnose -> plan -> guard -> act -> verify -> record) and
its parts: the collectors (``collect_cloud``, ``collect_aca``, ``fetch``), incident keys and
merging (``candidates``), the guards, the executor (``execute``), crash settling
(``reconcile``), verification, deferrals and their retries, the ticket path (``ticket``, what
``doorfix diagnose`` runs), the run report model (``report``) and the progress protocol.
``state`` holds the Agent and one run's state, so the parts name them without a circle.

May import: the journal, the config, the playbooks (which decide), the connectors (which
fetch and write). Never the reports, the daemon, the CLI or the sandbox.
"""
