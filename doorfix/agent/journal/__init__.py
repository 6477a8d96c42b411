"""The journal: what doorfix did and decided, durable across crashes.

Owns the SQLite store (``base`` opens it with WAL and fsync, ``schema`` its versioned
migrations, ``sql`` the statements, ``rows`` the typed rows, ``incidents`` and ``actions``
the two halves of :class:`store.Journal`) and ``lock``, the one-acting-run-per-journal
``flock``. A second backend goes beside SQLite here.

May import: ``doorfix.errors`` and ``doorfix.clock`` only. It knows nothing of playbooks,
connectors or the engine: it stores their values as plain strings and JSON.
"""
