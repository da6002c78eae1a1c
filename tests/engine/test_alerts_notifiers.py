"""Email through the real SMTP sink and Prometheus Alertmanager (Debian's) receiving alerts."""

import email
import email.policy
import os
import ssl
import time
import uuid
from pathlib import Path

import httpx
import pytest

from engine.alerts.notifiers import (
    AlertPayload,
    Notification,
    NotifyError,
    build_notifier,
    validate_channel,
)
from engine.alerts.notifiers.email import EmailNotifier


def _env(name):
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run `source .ci/services.sh`")
    return value


def _notification(status="firing", name="drift"):
    alert = AlertPayload(
        fingerprint="abc123",
        status=status,
        labels={
            "alertname": name,
            "deployment": "loans-prod",
            "severity": "warning",
            "run": uuid.uuid4().hex,
        },
        annotations={"summary": "PSI of <x> is 0.31"},
        value=0.31,
        threshold=0.2,
        starts_at="2025-11-27T10:01:00.000Z",
        ends_at="2025-11-27T10:05:00.000Z" if status == "resolved" else None,
        links={
            "grafana": "http://grafana.example/d/drift?var-deployment=loans-prod",
            "deployment": "http://driftline.example/deployments/loans-prod",
        },
    )
    return Notification(str(uuid.uuid4()), "ch", "root:{}", (alert,), {"alertname": name})


def _smtp(security, port_var, **extra):
    context = ssl.create_default_context(cafile=_env("DRIFTLINE_TEST_SMTP_CAFILE"))
    values = {
        "host": _env("DRIFTLINE_TEST_SMTP_HOST"),
        "port": int(_env(port_var)),
        "sender": "alerts@driftline.example",
        "to": ("oncall@acme.example",),
        "security": security,
        "username": _env("DRIFTLINE_TEST_SMTP_USER"),
        "password": _env("DRIFTLINE_TEST_SMTP_PASSWORD"),
        "ssl_context": context,
        "timeout_s": 5.0,
    }
    values.update(extra)
    return EmailNotifier(**values)


def _received(notification_id):
    folder = Path(_env("DRIFTLINE_TEST_SMTP_MAILDIR"))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for path in sorted(folder.glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if message["X-Driftline-Notification"] == notification_id:
                return message
        time.sleep(0.05)
    raise AssertionError("the message did not arrive")


@pytest.mark.smtp
@pytest.mark.parametrize(
    ("security", "port"),
    [("starttls", "DRIFTLINE_TEST_SMTP_PORT"), ("tls", "DRIFTLINE_TEST_SMTP_TLS_PORT")],
)
def test_email_with_tls_and_auth_reaches_the_sink(security, port):
    notification = _notification()
    assert _smtp(security, port).send(notification) == 250
    message = _received(notification.id)
    assert message["Subject"] == "[FIRING:1] drift (loans-prod)"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "value 0.31, threshold 0.2" in text
    assert "PSI of &lt;x&gt; is 0.31" in html  # escaped in HTML
    assert "http://grafana.example/d/drift" in html


@pytest.mark.smtp
def test_email_wrong_password_is_permanent_and_refused_port_retryable():
    with pytest.raises(NotifyError) as refused:
        _smtp("starttls", "DRIFTLINE_TEST_SMTP_PORT", password="wrong").send(_notification())
    assert refused.value.retryable is False
    assert refused.value.status_code == 535
    with pytest.raises(NotifyError) as down:
        _smtp("starttls", "DRIFTLINE_TEST_SMTP_PORT", port=9).send(_notification())
    assert down.value.retryable is True


def test_alertmanager_receives_firing_and_resolved_alerts():
    url = _env("DRIFTLINE_TEST_ALERTMANAGER_URL")
    with httpx.Client(timeout=5) as client:
        notifier = build_notifier("alertmanager", {"url": url}, {}, client=client)
        firing = _notification(name="drift-am")
        run = firing.alerts[0].labels["run"]
        assert notifier.send(firing) == 200
        alerts = client.get(f"{url}/api/v2/alerts", params={"filter": f'run="{run}"'}).json()
        (alert,) = alerts
        assert alert["labels"]["alertname"] == "drift-am"
        assert alert["annotations"]["value"] == "0.31"
        assert alert["status"]["state"] == "active"
        assert alert["generatorURL"] == "http://driftline.example/deployments/loans-prod"
        resolved = Notification(
            firing.id,
            "ch",
            "k",
            (
                AlertPayload(
                    **{
                        **firing.alerts[0].__dict__,
                        "status": "resolved",
                        "ends_at": "2025-11-27T10:05:00.000Z",
                    }
                ),
            ),
        )
        assert notifier.send(resolved) == 200
        active = client.get(
            f"{url}/api/v2/alerts", params={"filter": f'run="{run}"', "active": "true"}
        ).json()
        assert active == []
        bad = build_notifier("alertmanager", {"url": url + "/nope"}, {}, client=client)
        with pytest.raises(NotifyError) as error:
            bad.send(firing)
        assert error.value.retryable is False
        assert error.value.status_code == 404


def test_channel_settings_are_validated():
    config, _secrets = validate_channel(
        "webhook", {"url": "https://hooks.example/x"}, {"signing_secrets": ["whsec_abc"]}
    )
    assert config == {"url": "https://hooks.example/x"}
    with pytest.raises(ValueError, match="url"):
        validate_channel("slack", {}, {})
    with pytest.raises(ValueError, match="to"):
        validate_channel("email", {"host": "h", "port": 25, "sender": "a@b.c"}, {})
    notifier = build_notifier(
        "email",
        {"host": "h", "port": 25, "sender": "a@b.c", "to": ["x@y"]},
        {"password": "p"},
        client=httpx.Client(),
    )
    assert isinstance(notifier, EmailNotifier)
    assert notifier.password == "p"
    with pytest.raises(ValueError, match="unknown"):
        build_notifier("pager", {}, {}, client=httpx.Client())
