"""``POST /v1/ingest``: events over HTTP into the embedded engine (API keys with ``ingest``)."""
