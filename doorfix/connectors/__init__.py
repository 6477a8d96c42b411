"""The connectors: one typed async client per system over one HTTP layer.

``_http`` is the one choke point (auth and tokens, retries by call rule, Retry-After, the
client-side rate limit, mapping every failure into ``doorfix.errors``); ``_paging`` and
``_decode`` stream and validate pages; ``cloud``, ``aca`` and ``clp`` are the clients;
``factory`` builds the three from URLs and secrets; ``models`` holds the contract's shapes.

May import: ``doorfix.errors`` and ``doorfix.clock``. Never the agent, playbooks or sandbox.
"""
