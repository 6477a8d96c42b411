"""The ACA runbook: why ACA, Larry or the lock refused a person, and what to do.

``playbook`` runs the checks in the runbook's order (``checks``), over access as each layer
sees it (``access``: ACA bookings and the Access Matrix, Larry access, the IQ) and the lock's
hardware (``lock_hardware``: online, privacy mode, IQ); ``plans`` turns a cause into actions;
``causes`` holds the ``aca.*`` rows of the cause table.

May import: the playbooks' shared vocabulary and ``doorfix.connectors.models``.
"""
