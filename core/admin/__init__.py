"""The admin API: a JSON REST API (OpenAPI 3) on its own listener, for operators.

``core start`` runs it beside the gateway and the scheduler; ``core start admin`` runs it
alone (:func:`core.admin.service.run_admin`). See ``docs/admin-api.md``.
"""
