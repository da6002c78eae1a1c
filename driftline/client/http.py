"""HTTP transport: ``POST /v1/ingest`` with a bearer token from the client-credentials grant.

The token comes from ``POST /v1/auth/token`` (``grant_type=client_credentials``,
``client_id`` = API key id, ``client_secret`` = the key) and is fetched again shortly before
it expires, or at once when the API answers 401.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from driftline.client.transport import Delivery, Envelope, PermanentError, TransientError

__all__ = ["HttpTransport"]

_RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None


def _raise_for(response: httpx.Response, what: str) -> None:
    message = f"{what}: HTTP {response.status_code} {response.text[:200]}"
    if response.status_code in _RETRYABLE:
        raise TransientError(message, retry_after=_retry_after(response))
    raise PermanentError(message)


class HttpTransport:
    """Sends envelopes to a Driftline API with an ingest-scoped API key.

    Args:
        base_url: The API's root, e.g. ``https://driftline.example.com``.
        key_id: The API key's id (the OAuth2 client id).
        key_secret: The key itself (the client secret); never logged.
        timeout_seconds: Connect, read and write timeout of each request.
        refresh_margin_seconds: Fetch a new token this long before the current one expires
            (at most half its lifetime).
        clock: Monotonic seconds; injectable for tests.
        http_options: More keyword arguments for :class:`httpx.AsyncClient` (``verify``,
            ``transport``, ``headers`` ...).

    """

    keyed = False

    def __init__(
        self,
        base_url: str,
        *,
        key_id: str,
        key_secret: str,
        timeout_seconds: float = 10.0,
        refresh_margin_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        http_options: dict[str, Any] | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._key_id = key_id
        self._key_secret = key_secret
        self._timeout = timeout_seconds
        self._margin = refresh_margin_seconds
        self._clock = clock
        self._options = dict(http_options or {})
        self._client: httpx.AsyncClient | None = None
        self._token: str | None = None
        self._expires_at = 0.0

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self._base_url, timeout=self._timeout, **self._options
            )
        return self._client

    async def _access_token(self) -> str:
        if self._token is not None and self._clock() < self._expires_at:
            return self._token
        try:
            response = await self._http().post(
                "/v1/auth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": self._key_id,
                    "client_secret": self._key_secret,
                },
            )
        except httpx.HTTPError as error:
            raise TransientError(f"token request failed: {error!r}") from error
        if response.status_code != 200:
            _raise_for(response, "token request refused")
        body = response.json()
        lifetime = float(body.get("expires_in", 60))
        self._token = str(body["access_token"])
        self._expires_at = self._clock() + lifetime - min(self._margin, lifetime / 2)
        return self._token

    async def send(self, envelope: Envelope) -> Delivery:
        """POST one envelope to ``/v1/ingest``; answer the receipt's counts."""
        token = await self._access_token()
        try:
            response = await self._http().post(
                "/v1/ingest",
                content=envelope.body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
        except httpx.HTTPError as error:
            raise TransientError(f"ingest request failed: {error!r}") from error
        if response.status_code == 401:
            self._token = None  # expired or revoked early: fetch a new one on the retry
            raise TransientError("ingest refused the access token (401)")
        if response.status_code not in (200, 202):
            _raise_for(response, "ingest refused")
        try:
            receipt = response.json()
            rejections = receipt.get("rejections") or [{}]
            return Delivery(
                accepted=int(receipt["accepted"]),
                rejected=int(receipt["rejected"]),
                first_rejection=str(rejections[0].get("reason", "")),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return Delivery()

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
