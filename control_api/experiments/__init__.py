"""Experiments and runs: MLflow's tracking, tenant-scoped; linked to model versions (lineage)."""
