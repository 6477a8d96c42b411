"""The world model: one set of entities behind the cloud, ACA and CLP views.

``world`` holds the entity tables (``tables``, indexed) of ``model``'s dataclasses and a heap
of timed effects; the rules live one module per concern: ``rules`` (ACA, CLP, the locks),
``doors`` and ``cloud`` (cloud doors and writes), ``access`` (ACA -> CLP -> IQ), ``events``
and ``doorlogs`` (event delivery, door-log storage), ``people`` (presentations),
``hardware`` (on-site verbs), ``truth`` (every layer's view), ``fingerprint``; ``wire``
turns entities into the contract's JSON; ``builder`` builds worlds for scenarios.

May import: ``doorfix.clock``, and ``faults.registry`` for the world's fault records.
"""
