"""What people read: period reports, their renderings, history and notifications.

Owns the period report (``period``: what was fixed, is pending, needs a person, over a time
window), its renderings (``render``: text, markdown, JSON, self-contained HTML with a chart),
``history`` (every incident and action of one subject) and ``notify`` (apprise: the run
message and the daily digest).

May import: the journal (read side), the engine's run report model, the config. Never the
daemon or the CLI.
"""
