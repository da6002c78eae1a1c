"""The event schema (version 1) and its two wire forms.

Events are JSON. The organization is never read from an event: it comes from the API key
(HTTP ingest) or from the topic's binding (Kafka), so a sender cannot write into another
tenant.

Prediction (``"type": "prediction"``, the default when ``type`` is absent)::

    {"event_id": "e-1", "ts": "2026-11-27T10:00:00Z", "deployment": "loans-prod",
     "model": "loans", "model_version": "7",
     "features": {"income": 5200.0, "region": "north", "age": null},
     "prediction": 0.82,            # a number, a class ("yes"), or {"yes": 0.82, "no": 0.18}
     "label": 1,                    # optional ground truth known at prediction time
     "latency_ms": 12.5, "request_id": "r-1", "error": false,
     "metrics": {"tokens": 311}}    # optional custom metrics, numbers

Label, ground truth arriving later (``"type": "label"``), joined to its prediction by
``request_id``: ``{"type": "label", "deployment": "loans-prod", "request_id": "r-1",
"label": 0, "ts": ...}``.

Resource (``"type": "resource"``): ``{"type": "resource", "deployment": "loans-prod",
"ts": ..., "cpu": 0.63, "memory_mb": 812, "gpu": 0.1, "replicas": 3}`` (gpu and replicas
optional).

``ts`` is event time: an RFC 3339 string, or a number of **milliseconds** since the Unix
epoch. ``event_id`` is required on predictions (duplicates within the dedup horizon are
dropped and counted).

Wire forms, detected from the payload:

* one event per message: a JSON object as above;
* a batch envelope, row-wise: ``{"schema_version": 1, "events": [event, ...]}``;
* a batch envelope, columnar: ``{"schema_version": 1, "type": "prediction", "columns":
  {"event_id": [...], "ts": [...], "deployment": [...], "features": {"income": [...]},
  "prediction": [...], ...}}`` (every column the same length);
* Arrow IPC (stream or file format) of prediction events: the columnar envelope's columns,
  features flattened as ``features.<name>`` and custom metrics as ``metrics.<name>``
  (``event_id``, ``ts``, ``deployment``, ``prediction``, ``latency_ms``, ``error``,
  ``request_id``, ``label``, ``features.income``, ...). The high-rate form: it is read
  without a Python object per value when the columns have these Arrow types (any other
  type is read value by value, by the JSON rules):

  - numbers (features, ``latency_ms``, ``prediction`` scores, metrics): any integer or
    floating type; a ``float64`` column without nulls is read in place. Null is a missing
    value; NaN and infinities are refused (``wrong_type``), as in JSON, where they cannot
    be written;
  - ``ts``: ``int64`` epoch milliseconds, or an Arrow ``timestamp`` of any unit (a
    timestamp without a zone is taken as UTC; finer units are truncated to the
    millisecond);
  - text (``event_id``, ``deployment``, ``request_id``) and categorical features:
    ``string``, or ``dictionary<string>`` — the better form for repeated text (the
    deployment, categories): categories are counted by their dictionary codes;
  - ``error``: ``bool``. A column that is absent, or of Arrow's ``null`` type, is all
    missing.

  Columns the deployment's monitor does not watch are ignored. A refused row is
  dead-lettered with its values as a JSON object (``{"event_id": ..., "features.x": ...}``).
"""

from __future__ import annotations

from enum import StrEnum

SCHEMA_VERSION = 1
"""The event schema version this engine reads; envelopes of another version are refused."""

MAX_EVENT_BYTES = 64 * 1024
"""Default largest accepted single event (or per-event share of an envelope), in bytes."""


class EventType(StrEnum):
    """The kinds of event."""

    PREDICTION = "prediction"
    LABEL = "label"
    RESOURCE = "resource"


class Reason(StrEnum):
    """Why an event went to the dead-letter sink (also the Prometheus ``reason`` label)."""

    MALFORMED = "malformed"  # not JSON, not an object, unreadable Arrow
    SCHEMA_VERSION = "schema_version"
    OVERSIZED = "oversized"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    UNKNOWN_TYPE = "unknown_type"
    UNKNOWN_DEPLOYMENT = "unknown_deployment"
    BAD_TIMESTAMP = "bad_timestamp"
    FUTURE_TIMESTAMP = "future_timestamp"
    LATE = "late"
    UNMATCHED_LABEL = "unmatched_label"
