"""Read APIs over the metrics store for one deployment: drift, performance, latency."""
