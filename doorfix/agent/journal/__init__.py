"""The journal: what doorfix did and decided, durable across crashes.

Two backends behind one connection layer (``connection``): ``sqlite`` (one file, WAL and
fsync; the embedded default) and ``postgres`` (a fleet's shared database, psycopg 3 with its
pool), chosen by ``base.open_database`` from ``[journal] path`` or ``[journal] url``.
``schema`` holds the versioned migrations (one DDL per dialect where they differ), ``sql``
the statements (SQLite's ``:name`` parameters; the PostgreSQL connection rewrites them),
``rows`` the typed rows, ``incidents`` and ``actions`` the two halves of
:class:`store.Journal`, and ``lock`` the one-acting-run-per-journal lock: an ``flock`` beside
a SQLite file, a row with a heartbeat and a fence in PostgreSQL.

May import: ``doorfix.errors`` and ``doorfix.clock`` only. It knows nothing of playbooks,
connectors or the engine: it stores their values as plain strings and JSON.
"""
