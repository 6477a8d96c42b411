"""The playbooks: pure decisions, facts and now in, a cause and a plan out.

The root holds the shared vocabulary: ``types`` (causes, outcomes, remedies, plans, steps),
``facts`` (what the engine fetched), ``policy`` (the config values plans need, as one frozen
value), ``causes`` and ``cause_table`` (every cause with its outcome, remedy and checklist),
``checklists``, ``schedules`` and ``plans``. The runbooks live beside it: ``door_logs/`` (the
cloud runbook), ``aca/`` (the ACA runbook), and ``license_renewal``.

May import: ``doorfix.connectors.models`` (the typed facts), ``doorfix.errors`` and
``doorfix.clock``. Never the agent, the connectors' clients or the sandbox: a playbook does no
I/O and reads no config file.
"""
