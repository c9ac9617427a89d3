"""SMTP transport: one connection for many messages, reconnecting when dropped.

Every failure is turned into a SendError that says whether it is temporary
(try again later: 4xx replies, dropped connections, timeouts) or permanent for
that recipient (5xx), and what the server said. Nothing here knows about the
outbox; nothing here prints.
"""

from __future__ import annotations

import os
import smtplib
import socket
import ssl
from dataclasses import dataclass
from email.message import EmailMessage

from briefings.config import SmtpSettings
from briefings.errors import DeliveryError

DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


@dataclass
class SendError(Exception):
    message: str
    temporary: bool
    connection_lost: bool = False

    def __str__(self) -> str:
        return self.message


def password(settings: SmtpSettings) -> str | None:
    """The SMTP password, from the environment variable [smtp] password_env names."""
    if not settings.username:
        return None
    value = os.environ.get(settings.password_env)
    if value is None:
        raise DeliveryError(
            f"[smtp] password_env names {settings.password_env}, which is not set in the environment",
            f"export {settings.password_env}=... before running briefings (the password never goes in config.toml)",
        )
    return value


def tls_context(settings: SmtpSettings) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if settings.ca_file:
        context.load_verify_locations(cafile=str(settings.ca_file))
    return context


class Mailer:
    """An SMTP session as configured: SSL or STARTTLS or plain, AUTH when a username is set."""

    def __init__(self, settings: SmtpSettings):
        self.settings = settings
        self.port = settings.port or DEFAULT_PORTS[settings.security]
        self.conn: smtplib.SMTP | None = None
        self.found: dict = {}

    def __enter__(self) -> "Mailer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def connect(self) -> None:
        """Connect, EHLO, STARTTLS and AUTH as configured; raises SendError (connection) or DeliveryError (config)."""
        s = self.settings
        secret = password(s)
        try:
            if s.security == "ssl":
                conn = smtplib.SMTP_SSL(s.host, self.port, timeout=s.timeout, context=tls_context(s))
            else:
                conn = smtplib.SMTP(s.host, self.port, timeout=s.timeout)
            conn.ehlo()
            self.found = {"host": s.host, "port": self.port, "banner_extensions": sorted(conn.esmtp_features)}
            if s.security == "starttls":
                if not conn.has_extn("starttls"):
                    conn.close()
                    raise DeliveryError(
                        f"{s.host}:{self.port} does not offer STARTTLS",
                        'set [smtp] security = "ssl" (port 465) or, on a trusted network only, "none"',
                    )
                conn.starttls(context=tls_context(s))
                conn.ehlo()
            self.found["tls"] = s.security in ("ssl", "starttls")
            self.found["auth_methods"] = conn.esmtp_features.get("auth", "").split()
            if s.username:
                conn.login(s.username, secret)
                self.found["authenticated_as"] = s.username
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(
                f"{s.host}:{self.port} refused the login for {s.username}: {exc.smtp_code} {_text(exc.smtp_error)}",
                f"check [smtp] username and the password in ${s.password_env}",
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(f"{s.host}:{self.port}: {exc}", "the server offers no AUTH: remove [smtp] username") from exc
        except ssl.SSLError as exc:
            raise SendError(f"TLS with {s.host}:{self.port} failed: {exc.reason or exc}", temporary=True,
                            connection_lost=True) from exc
        except smtplib.SMTPResponseException as exc:
            raise SendError(f"{s.host}:{self.port} answered {exc.smtp_code} {_text(exc.smtp_error)}",
                            temporary=exc.smtp_code < 500, connection_lost=True) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise SendError(f"cannot connect to {s.host}:{self.port}: {_reason(exc)}", temporary=True,
                            connection_lost=True) from exc
        self.conn = conn

    def send(self, message: EmailMessage, sender: str, recipient: str) -> None:
        """Send one message to one recipient, connecting (again) if needed."""
        if self.conn is None:
            self.connect()
        try:
            refused = self.conn.send_message(message, from_addr=sender, to_addrs=[recipient])
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = exc.recipients.get(recipient, (550, b"refused"))
            self._reset()
            raise SendError(f"{code} {_text(reply)}", temporary=400 <= code < 500) from exc
        except smtplib.SMTPSenderRefused as exc:
            self._reset()
            raise SendError(f"sender refused: {exc.smtp_code} {_text(exc.smtp_error)}", temporary=exc.smtp_code < 500) from exc
        except smtplib.SMTPServerDisconnected as exc:
            self._drop()
            raise SendError(f"the server closed the connection: {exc or 'disconnected'}", temporary=True,
                            connection_lost=True) from exc
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code == 421:
                self._drop()
                raise SendError(f"421 {_text(exc.smtp_error)}", temporary=True, connection_lost=True) from exc
            self._reset()
            raise SendError(f"{exc.smtp_code} {_text(exc.smtp_error)}", temporary=exc.smtp_code < 500) from exc
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            raise SendError(f"connection lost: {_reason(exc)}", temporary=True, connection_lost=True) from exc
        if refused:
            code, reply = refused[recipient]
            raise SendError(f"{code} {_text(reply)}", temporary=400 <= code < 500)

    def _reset(self) -> None:
        try:
            if self.conn is not None:
                self.conn.rset()
        except (OSError, smtplib.SMTPException):
            self._drop()

    def _drop(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
        self.conn = None

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.quit()
            except (OSError, smtplib.SMTPException):
                pass
            self._drop()


def _text(reply) -> str:
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    return " ".join(str(reply).split())


def _reason(exc: Exception) -> str:
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return str(exc) or type(exc).__name__
