"""Faults: the world bent into each runbook symptom, and the APIs into a broken vendor.

``registry`` is the table of world faults, one kind per cause code (``aca``, ``cloud``, with
``base`` their shared parts): how to inject it, and how to tell from the world as it is now
whether the cause is still there. ``api`` holds the API faults (errors, latency, dropped
connections, paging quirks) the HTTP layer must survive.

May import: the world model.
"""
