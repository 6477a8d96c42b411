"""The three vendor APIs and the control API, served over the world.

``app`` assembles one Starlette app; ``cloud``, ``aca``, ``clp`` serve the contract's
endpoints (``clp_paging`` CLP's two paging styles), ``auth`` the three auth schemes,
``control`` the test and demo verbs (inject a fault, step the clock, read the truth);
``runtime`` is the per-request state (mutation log, fault gate); ``server`` runs it with
uvicorn on 127.0.0.1 and ``transport`` in process through httpx.

May import: the world, the faults and the scenarios.
"""
