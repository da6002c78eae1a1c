"""Email over SMTP.

STARTTLS, implicit TLS or plain (loopback), optional AUTH, and a ``multipart/alternative``
message with a plain-text and an HTML part.

SMTP replies are classified by their class: 4xx (and a dropped or refused connection,
a timeout) are retryable; 5xx, including a refused AUTH, are permanent.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Literal

from jinja2 import Environment

from engine.alerts.notifiers.base import Notification, NotifyError

__all__ = ["EmailNotifier", "render_email"]

_TEXT = """{{ n.title }}
{% for a in n.alerts %}
- {{ a.status | upper }} {{ a.annotations.get('summary', a.name) }}
  value {{ '%.4g' | format(a.value) }}, threshold {{ '%.4g' | format(a.threshold) }}
{%- for k, v in a.links | dictsort %}
  {{ k }}: {{ v }}
{%- endfor %}
{% endfor %}"""

_HTML = """<html><body><h2>{{ n.title }}</h2><table border="1" cellpadding="4">
<tr><th>status</th><th>alert</th><th>value</th><th>threshold</th><th>links</th></tr>
{% for a in n.alerts %}<tr><td>{{ a.status }}</td>
<td>{{ a.annotations.get('summary', a.name) }}</td>
<td>{{ '%.4g' | format(a.value) }}</td><td>{{ '%.4g' | format(a.threshold) }}</td>
<td>{% for k, v in a.links | dictsort %}<a href="{{ v }}">{{ k }}</a> {% endfor %}</td></tr>
{% endfor %}</table></body></html>"""

_ENV = Environment(autoescape=True)
_TEXT_ENV = Environment(autoescape=False)


def render_email(notification: Notification) -> tuple[str, str]:
    """The plain-text and HTML bodies of ``notification`` (HTML escaped)."""
    text = _TEXT_ENV.from_string(_TEXT).render(n=notification)
    html = _ENV.from_string(_HTML).render(n=notification)
    return text, html


@dataclass
class EmailNotifier:
    """Sends one email per notification to ``to``."""

    host: str
    port: int
    sender: str
    to: tuple[str, ...]
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str = ""
    password: str = ""
    timeout_s: float = 10.0
    ssl_context: ssl.SSLContext | None = None

    def message(self, notification: Notification) -> EmailMessage:
        """The email."""
        text, html = render_email(notification)
        msg = EmailMessage()
        msg["Subject"] = notification.title
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.to)
        msg["Message-ID"] = make_msgid(idstring=notification.id.replace("-", ""))
        msg["X-Driftline-Notification"] = notification.id
        msg.set_content(text)
        msg.add_alternative(html, subtype="html")
        return msg

    def _connect(self) -> smtplib.SMTP:
        context = self.ssl_context or ssl.create_default_context()
        if self.security == "tls":
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout_s, context=context)
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
        if self.security == "starttls":
            smtp.starttls(context=context)
        return smtp

    def send(self, notification: Notification) -> int | None:
        """Deliver the email; the final SMTP reply code is returned (250)."""
        try:
            with self._connect() as smtp:
                if self.username:
                    smtp.login(self.username, self.password)
                smtp.send_message(self.message(notification))
                code, _ = smtp.noop()
                return int(code)
        except smtplib.SMTPAuthenticationError as error:
            raise NotifyError(
                f"SMTP AUTH refused: {error}", retryable=False, status_code=error.smtp_code
            ) from error
        except smtplib.SMTPRecipientsRefused as error:
            codes = [c for c, _ in error.recipients.values()]
            retryable = all(400 <= c < 500 for c in codes)
            raise NotifyError(f"recipients refused: {error}", retryable=retryable) from error
        except smtplib.SMTPResponseException as error:
            retryable = 400 <= error.smtp_code < 500
            raise NotifyError(
                f"SMTP {error.smtp_code}: {error.smtp_error!r}",
                retryable=retryable,
                status_code=error.smtp_code,
            ) from error
        except (smtplib.SMTPException, OSError) as error:
            raise NotifyError(f"SMTP connection failed: {error}", retryable=True) from error
