"""API keys for machines: scoped (``ingest``, ``read``), hashed at rest, shown once."""
