"""The sandbox: the three vendor systems simulated, for the demo, the tests and the benchmarks.

``world/`` is the one world model behind the three APIs (entities, rules, effects on a
clock, ground truth); ``api/`` serves the cloud, ACA and CLP contracts and a control API over
it (in process or over HTTP on 127.0.0.1); ``faults/`` bends the world into each cause's
symptom (world faults) or the APIs into a broken vendor's (API faults); ``scenarios/``
builds the demo and scale worlds.

May import: ``doorfix.errors`` and ``doorfix.clock``. It never imports the agent, the
playbooks or the connectors: it honours the contract on its own.
"""
