"""Deployment webhooks: every deployment transition, signed and delivered to CD systems."""
