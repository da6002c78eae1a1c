"""Monitors: what the engine watches for a deployment, in the engine's own shape."""
