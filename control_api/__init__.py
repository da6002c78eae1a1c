"""Driftline's control plane: a FastAPI application built by :func:`control_api.app.create_app`.

Split by domain (``auth``, ``users``, ``api_keys``, ``projects``), each with its router
(thin), schemas, service (plain functions, keyword-only, always given the tenant) and,
where queries grow, a repository. Cross-cutting parts: :mod:`control_api.errors` (one
problem+json format), :mod:`control_api.rbac` (one role -> permission map),
:mod:`control_api.deps` (authentication, ``require``), :mod:`control_api.middleware`.
"""
