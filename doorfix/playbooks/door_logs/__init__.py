"""The cloud runbook: why a person was refused at a cloud door, and what to do.

``playbook`` classifies each door-log failure and dispatches to its family: ``credentials``
(unassigned, unknown or lost cards), ``access`` (access groups, inherited groups, holidays),
``visitors`` (expired temp keys), ``licenses`` (door licenses); ``evidence`` and ``details``
shape what an incident shows; ``causes`` holds the ``cloud.*`` rows of the cause table.

May import: the playbooks' shared vocabulary and ``doorfix.connectors.models``.
"""
