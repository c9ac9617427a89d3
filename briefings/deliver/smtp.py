"""SMTP transport: one connection for many messages, reconnecting when dropped.

Every failure is turned into a SendError that says whether it is temporary
(try again later: 4xx replies, dropped connections, timeouts) or permanent for
that recipient (5xx), whether it came while connecting (the server, not the
recipient, is the problem), and what the server said. A fault of the
configuration (a certificate refused, a missing or broken ca_file, a login
refused or required) is a DeliveryError instead: nothing can be sent until it
is fixed, so it is not retried. Nothing here knows about the outbox; nothing
here prints.
"""

from __future__ import annotations

import os
import smtplib
import socket
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from briefings.config import SmtpSettings
from briefings.errors import DeliveryError

DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


@dataclass
class SendError(Exception):
    message: str
    temporary: bool
    connection_lost: bool = False
    connecting: bool = False  # raised before any message could be sent: the server is unreachable or refusing

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


CA_FILE_HINT = "point [smtp] ca_file at the PEM file of the CA that signed the server's certificate, or empty it for the system's CAs"


def ca_file_problem(path: Path | None) -> str | None:
    """What is wrong with [smtp] ca_file (missing, unreadable, no PEM certificate in it), or None."""
    if not path:
        return None
    path = Path(path)
    if not path.is_file():
        return f"{path} does not exist" if not path.exists() else f"{path} is not a file"
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"{path} cannot be read: {exc.strerror or exc}"
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=data.decode("ascii"))
    except (ssl.SSLError, UnicodeDecodeError, ValueError):
        return f"{path} holds no PEM certificate"
    return None


def tls_context(settings: SmtpSettings) -> ssl.SSLContext:
    problem = ca_file_problem(settings.ca_file)
    if problem:
        raise DeliveryError(f"[smtp] ca_file: {problem}", CA_FILE_HINT)
    context = ssl.create_default_context()
    if settings.ca_file:
        context.load_verify_locations(cafile=str(settings.ca_file))
    return context


# OpenSSL's verify codes that mean "trust this issuer" rather than "this certificate is wrong".
_UNTRUSTED = {18, 19, 20, 21, 27}  # self-signed, self-signed in chain, no local issuer, cannot verify leaf, untrusted
_NAME_MISMATCH = {62, 63, 64}  # hostname, e-mail address, IP address


def certificate_refused(host: str, port: int, exc: ssl.SSLCertVerificationError) -> DeliveryError:
    """The certificate error with OpenSSL's reason (hostname mismatch, untrusted issuer, expired ...) and the fix."""
    why = (exc.verify_message or exc.reason or str(exc)).rstrip(".")
    if why[1:2].islower():  # "Hostname mismatch", not "IP address mismatch"
        why = why[:1].lower() + why[1:]
    if exc.verify_code in _NAME_MISMATCH:
        hint = "set [smtp] host to a name the server's certificate is for"
    elif exc.verify_code in _UNTRUSTED:
        hint = "set [smtp] ca_file to the PEM file of the CA that signed the server's certificate"
    else:
        hint = "the server's certificate must be fixed, or [smtp] ca_file set to the CA that signed it"
    return DeliveryError(f"TLS with {host}:{port} failed: the server's certificate was refused: {why}", hint)


# Replies that mean the session is not allowed as configured: authentication required, or refused.
_AUTH_CODES = {530, 534, 535, 538}


def auth_fault(host: str, port: int, code: int, reply) -> DeliveryError | None:
    if code not in _AUTH_CODES:
        return None
    return DeliveryError(
        f"{host}:{port} requires a login it did not get: {code} {_text(reply)}",
        "set [smtp] username and password_env (and security = \"starttls\" or \"ssl\"), or check them",
    )


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

    def connect(self) -> smtplib.SMTP:
        """Connect, EHLO, STARTTLS and AUTH as configured; raises SendError (connection) or DeliveryError (config)."""
        s = self.settings
        secret = password(s)
        try:
            conn: smtplib.SMTP
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
            if s.username and secret is not None:  # password() gives one whenever a username is set
                conn.login(s.username, secret)
                self.found["authenticated_as"] = s.username
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(
                f"{s.host}:{self.port} refused the login for {s.username}: {exc.smtp_code} {_text(exc.smtp_error)}",
                f"check [smtp] username and the password in ${s.password_env}",
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(f"{s.host}:{self.port}: {exc}", "the server offers no AUTH: remove [smtp] username") from exc
        except ssl.SSLCertVerificationError as exc:
            raise certificate_refused(s.host, self.port, exc) from exc
        except ssl.SSLError as exc:
            raise SendError(f"TLS with {s.host}:{self.port} failed: {exc.reason or exc}", temporary=True,
                            connection_lost=True, connecting=True) from exc
        except smtplib.SMTPResponseException as exc:
            fault = auth_fault(s.host, self.port, exc.smtp_code, exc.smtp_error)
            if fault is not None:
                raise fault from exc
            if exc.smtp_code >= 500:
                raise DeliveryError(f"{s.host}:{self.port} refused the session: {exc.smtp_code} {_text(exc.smtp_error)}",
                                    "check [smtp] host, port and security") from exc
            raise SendError(f"{s.host}:{self.port} answered {exc.smtp_code} {_text(exc.smtp_error)}",
                            temporary=True, connection_lost=True, connecting=True) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise SendError(f"cannot connect to {s.host}:{self.port}: {_reason(exc)}", temporary=True,
                            connection_lost=True, connecting=True) from exc
        self.conn = conn
        return conn

    def send(self, message: EmailMessage, sender: str, recipient: str) -> None:
        """Send one message to one recipient, connecting (again) if needed."""
        conn = self.conn if self.conn is not None else self.connect()
        try:
            refused = conn.send_message(message, from_addr=sender, to_addrs=[recipient])
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = exc.recipients.get(recipient, (550, b"refused"))
            self._reset()
            raise auth_fault(self.settings.host, self.port, code, reply) or SendError(
                f"{code} {_text(reply)}", temporary=400 <= code < 500) from exc
        except smtplib.SMTPSenderRefused as exc:
            self._reset()
            fault = auth_fault(self.settings.host, self.port, exc.smtp_code, exc.smtp_error)
            if fault is not None:
                raise fault from exc
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
            raise auth_fault(self.settings.host, self.port, exc.smtp_code, exc.smtp_error) or SendError(
                f"{exc.smtp_code} {_text(exc.smtp_error)}", temporary=exc.smtp_code < 500) from exc
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
