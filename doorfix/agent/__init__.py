"""The agent: everything that acts on the three systems and tells people about it.

Rooms, with the direction of their imports (checked by tests/architecture/test_imports.py):

    cli/      -> daemon/, reports/, engine/, journal/, runtime, config   (and the sandbox, for
                                                                         the embedded mode)
    daemon/   -> reports/, engine/, journal/, config
    reports/  -> engine/ (the run report model), journal/, config
    runtime   -> engine/, journal/, config, connectors         (builds an Agent from a config)
    engine/   -> journal/, config, sinks, playbooks/, connectors/
    journal/  -> errors, clock only
    sinks     -> config, log (apprise: the one module that sends anything: run messages,
                 digests, escalations)
    config    -> errors only

The agent never imports the sandbox except from cli/ (``doorfix sandbox``, ``demo`` and the
embedded sandbox a config-less run uses).
"""
