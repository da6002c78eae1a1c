"""The model registry: registered models, versions, aliases, promotions, MLflow sync."""
