"""Deployments: a model version in an environment, its rollout state machine and audit trail."""
