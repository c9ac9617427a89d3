"""Signed unsubscribe links: `<[serve] public_url>/unsubscribe/<token>`.

The token names the recipient and the list, signed (HMAC-SHA256, itsdangerous)
with the secret in the environment variable named by `[serve] secret_env`, and
dated, so a link older than MAX_AGE no longer works. Anyone can read what a token
names (it is sent only to that recipient); no one without the secret can make one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime

from briefings.config import Config
from briefings.errors import DeliveryError

SALT = "briefings-unsubscribe"
MAX_AGE_DAYS = 730  # a message two years old still unsubscribes its reader


@dataclass(frozen=True)
class Subscriber:
    email: str
    list_id: str


def secret(config: Config) -> str | None:
    """The signing secret from the environment (None: the variable is not set or empty)."""
    name = config.serve.secret_env
    value = os.environ.get(name, "") if name else ""
    return value or None


def require_secret(config: Config) -> str:
    value = secret(config)
    if value is None:
        raise DeliveryError(
            f"[serve] public_url is set but the environment variable {config.serve.secret_env or '([serve] secret_env is empty)'}"
            " that holds the secret for unsubscribe links is not set",
            "set it to a long random string (e.g. the output of `openssl rand -hex 32`), the same for"
            " `briefings serve` and for the runs that send, or empty [serve] public_url",
        )
    return value


def list_id(config: Config) -> str:
    """The list a token is for: [email] list_id, else derived as the List-Id header is."""
    from briefings.messages import _domain, _slug

    return config.email.list_id or f"{_slug(config.briefing.title)}.{_domain(config)}"


def _serializer(key: str, issued: datetime | None = None):
    from itsdangerous import TimestampSigner, URLSafeTimedSerializer

    if issued is None:
        return URLSafeTimedSerializer(key, salt=SALT)
    stamp = int(issued.timestamp())

    class Dated(TimestampSigner):  # a token dated when it was issued, not now
        def get_timestamp(self) -> int:
            return stamp

    return URLSafeTimedSerializer(key, salt=SALT, signer=Dated)


def make_token(key: str, subscriber: Subscriber, *, issued: datetime | None = None) -> str:
    return _serializer(key, issued).dumps({"r": subscriber.email, "l": subscriber.list_id})


def read_token(key: str | None, token: str) -> Subscriber | None:
    """The subscriber a token names, or None for a token that is forged, damaged, expired or made with another secret."""
    from itsdangerous import BadData

    if not key or not token or len(token) > 2048:
        return None
    try:
        payload = _serializer(key).loads(token, max_age=MAX_AGE_DAYS * 86400)
    except BadData:
        return None
    except (ValueError, TypeError, UnicodeError):  # bytes that decode to something that is not our JSON
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("r"), str) or not isinstance(payload.get("l"), str):
        return None
    return Subscriber(payload["r"], payload["l"])


def one_click(config: Config) -> bool:
    """Whether messages carry an https unsubscribe link that answers a one-click POST (RFC 8058)."""
    return bool(config.email.unsubscribe_url or config.serve.public_url)


def unsubscribe_url(config: Config, email: str) -> str | None:
    """`<public_url>/unsubscribe/<token>` for this recipient; None when [serve] public_url is not set,
    or [email] unsubscribe_url names another endpoint (it takes precedence)."""
    if not config.serve.public_url or config.email.unsubscribe_url:
        return None
    token = make_token(require_secret(config), Subscriber(email, list_id(config)))
    return f"{config.serve.public_url.rstrip('/')}/unsubscribe/{token}"
