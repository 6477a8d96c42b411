"""Scenarios: the worlds the sandbox serves, by name.

``registry`` maps a name and its parameters to a built world; ``demo`` is one instance of
every fault the runbooks know plus people who retry; ``scale`` is the large world of the
benchmarks (a million door logs, a thousand centers).

May import: the world model.
"""
