"""Read APIs over the metrics store for one deployment.

Drift, feature statistics, performance, latency, resources, custom metrics, and the drift plot.
"""
