"""The playbooks' tests: pure diagnosis over facts built by ``factories`` (beside this file).

Loading this conftest puts ``tests/playbooks/`` on ``sys.path``, so the tests in ``door_logs/`` and
``aca/`` import ``factories`` as the tests here do.
"""
