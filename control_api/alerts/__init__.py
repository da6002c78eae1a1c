"""Alerting resources: rules, channels, the routing tree, silences, alerts and deliveries."""
