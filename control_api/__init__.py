"""The FastAPI control plane: tenants, auth, RBAC, models, deployments, monitors.

Not built yet; see the control-plane issues. Only the package exists so that the
distribution layout is final from the start.
"""
