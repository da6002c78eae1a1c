"""The box sealing channel secrets at rest (:mod:`storage.secretbox`), and key rotation.

The box is built once from the settings and treated like the token signing key: outside
development the API refuses to start without ``DRIFTLINE_SECRETS_KEY``; in development (and
``driftline up``) a key is made once and kept in ``<data_dir>/secrets-key`` (mode 0600), so
stored secrets survive restarts. :func:`reseal_all` (``driftline admin rotate-secrets-key``)
seals every channel again under the first key.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from control_api.auth.tokens import ConfigurationError
from driftline.settings import Environment, Settings
from storage.models import AlertChannel, DeploymentWebhook
from storage.secretbox import SecretBox, SecretsError, local_key
from storage.tenancy import unscoped

__all__ = ["reseal_all", "secret_box"]


def secret_box(settings: Settings) -> SecretBox:
    """The box of ``settings.secrets_key``; :class:`ConfigurationError` when it is unusable."""
    keys = settings.secrets_key.get_secret_value()
    if not keys:
        if settings.environment is not Environment.DEVELOPMENT:
            raise ConfigurationError(
                "DRIFTLINE_SECRETS_KEY must be set to a Fernet key (only "
                "DRIFTLINE_ENVIRONMENT=development may start without one); make one with "
                "python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'"
            )
        keys = local_key(settings.data_dir)
    try:
        return SecretBox.from_text(keys)
    except SecretsError as error:
        raise ConfigurationError(f"DRIFTLINE_SECRETS_KEY: {error}") from None


def reseal_all(sessions: sessionmaker[Session], box: SecretBox) -> int:
    """Seal every channel's and deployment webhook's secrets again under ``box``'s first key.

    One transaction: a secret that opens with none of the keys (:class:`SecretsError`)
    changes nothing. Returns the number of channels and webhooks resealed.
    """
    with sessions() as session, unscoped(session):
        channels = session.scalars(select(AlertChannel)).all()
        for channel in channels:
            channel.secrets = box.reseal(channel.secrets)
        hooks = session.scalars(select(DeploymentWebhook)).all()
        for hook in hooks:
            hook.secrets = {
                name: [box.seal_value(box.open_value(name, value)) for value in values]
                for name, values in hook.secrets.items()
            }
        session.commit()
    return len(channels) + len(hooks)
