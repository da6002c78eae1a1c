"""Alerting: rules over closed windows, alert lifecycle, routing, and delivery with nothing lost.

One module per job, after Prometheus Alertmanager's packages:

- :mod:`.rules` - conditions over a :class:`~engine.results.WindowResult` -> samples
- :mod:`.lifecycle` - inactive -> pending -> firing -> resolved, ``for`` and ``keep_firing_for``
- :mod:`.fingerprint` - alert identity from the rule and labels
- :mod:`.templates` - annotations rendered with the numbers
- :mod:`.matchers`, :mod:`.routing` (dispatch), :mod:`.silence`, :mod:`.inhibit`
- :mod:`.nflog` - the notification log and the pure dedup decision
- :mod:`.targets` - which rules apply to a window: the deployment's and those following an alias
- :mod:`.evaluator` - the engine's window listener: state + history + outbox in one go
- :mod:`.delivery` - the pipeline draining the outbox: wait, mute, dedup, retry, notify
- :mod:`.notifiers` - webhook (Standard Webhooks), Slack, Teams, Mattermost, email, Alertmanager
"""
