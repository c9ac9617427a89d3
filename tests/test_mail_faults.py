"""What a send does when the mail server or its configuration is at fault: a real aiosmtpd server on 127.0.0.1.

A fault of the configuration (a certificate refused, a broken ca_file, a login
refused or required) stops the send at once with one line naming the cause and
costs no try: retrying cannot help. A server that cannot be reached costs one
connect, one try and one backoff for the whole batch, in one line.
"""

from __future__ import annotations

import re
import socket
import threading
from datetime import datetime

import pytest

from conftest import deliveries, fixture_feed, free_port, mail_config, write_config

EVERYONE = [{"email": "ana@example.org"}, {"email": "ben@example.org"}, {"email": "carol@example.org"}]
PASSWORD_ENV = "BRIEFINGS_TEST_FAULT_PW"


def configure(tmp_path, feed_server, port: int, extra_smtp: str = "", security: str = "starttls"):
    url = feed_server.add("/norms.rss", fixture_feed("norms.rss"))
    mail = mail_config(port, EVERYONE, security=security, extra_smtp=extra_smtp)
    if 'host = "localhost"' in extra_smtp:
        mail = mail.replace('host = "127.0.0.1"\n', "")
    return write_config(tmp_path, [("Norms Watch", url)], corpus=None, extra=mail)


def other_name(sink, tmp_path) -> str:
    """The server shows a certificate for another host name, from the CA ca_file trusts."""
    sink.ca.issue_cert("mail.other.example").configure_cert(sink.controller.SMTP_kwargs["tls_context"])
    return f'ca_file = "{sink.write_ca(tmp_path)}"'


def other_name_for_localhost(sink, tmp_path) -> str:
    return other_name(sink, tmp_path) + '\nhost = "localhost"'


def self_signed(sink, tmp_path) -> str:
    """The server shows a certificate that signed itself (the CA's own), and the system's CAs are used."""
    cert, key = tmp_path / "self.pem", tmp_path / "self.key"
    sink.ca.cert_pem.write_to_path(str(cert))
    sink.ca.private_key_pem.write_to_path(str(key))
    sink.controller.SMTP_kwargs["tls_context"].load_cert_chain(str(cert), str(key))
    return ""


def other_ca(sink, tmp_path) -> str:
    """ca_file holds a CA that did not sign the server's certificate."""
    import trustme

    path = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return f'ca_file = "{path}"'


def missing_ca_file(sink, tmp_path) -> str:
    return f'ca_file = "{tmp_path / "no-such-ca.pem"}"'


def not_pem_ca_file(sink, tmp_path) -> str:
    path = tmp_path / "ca.pem"
    path.write_text("this is not a certificate\n")
    return f'ca_file = "{path}"'


def wrong_password(sink, tmp_path) -> str:
    return f'ca_file = "{sink.write_ca(tmp_path)}"\nusername = "briefer"\npassword_env = "{PASSWORD_ENV}"'


def no_login(sink, tmp_path) -> str:
    return f'ca_file = "{sink.write_ca(tmp_path)}"'


CONFIG_FAULTS = [
    pytest.param(other_name, {}, r"certificate was refused: IP address mismatch, certificate is not valid for '127\.0\.0\.1'",
                 "set [smtp] host", id="ip-address-mismatch"),
    pytest.param(other_name_for_localhost, {}, r"certificate was refused: hostname mismatch, certificate is not valid for "
                 r"'localhost'", "set [smtp] host", id="hostname-mismatch"),
    pytest.param(self_signed, {}, r"certificate was refused: self.signed certificate", "set [smtp] ca_file",
                 id="self-signed"),
    pytest.param(other_ca, {}, r"certificate was refused: unable to get local issuer certificate", "set [smtp] ca_file",
                 id="untrusted-issuer"),
    pytest.param(missing_ca_file, {}, r"\[smtp\] ca_file: .*no-such-ca\.pem does not exist", "point [smtp] ca_file",
                 id="missing-ca-file"),
    pytest.param(not_pem_ca_file, {}, r"\[smtp\] ca_file: .*ca\.pem holds no PEM certificate", "point [smtp] ca_file",
                 id="ca-file-not-pem"),
    pytest.param(wrong_password, {"users": {"briefer": "right"}}, r"refused the login for briefer: 535",
                 "check [smtp] username", id="login-refused"),
    pytest.param(no_login, {"users": {"briefer": "right"}}, r"requires a login it did not get: 530", "set [smtp] username",
                 id="login-required"),
]


@pytest.mark.parametrize("make_fault, sink_kwargs, cause, hint", CONFIG_FAULTS)
def test_a_configuration_fault_stops_the_send_at_once_and_costs_no_try(tmp_path, feed_server, smtp_sink, cli_run,
                                                                       make_fault, sink_kwargs, cause, hint):
    sink = smtp_sink(tls="starttls", **sink_kwargs)
    cfg = configure(tmp_path, feed_server, sink.port, make_fault(sink, tmp_path))
    env = {PASSWORD_ENV: "wrong"}
    assert cli_run("--config", cfg, "run", env=env).exit_code == 0  # the archive is written whatever the mail does
    for _ in range(2):  # and again: not retried as if temporary, not waiting out a backoff
        sent = cli_run("--config", cfg, "send", env=env)
        assert sent.exit_code == 1
        naming = [line for line in sent.stderr.splitlines() if re.search(cause, line)]
        assert len(naming) == 1, sent.stderr
        assert naming[0].startswith("e-mail: ") and hint in naming[0]
        assert "will retry" not in sent.stderr and "waiting for a retry" not in sent.stderr
        assert "Traceback" not in sent.stderr and "CERTIFICATE_VERIFY_FAILED" not in sent.stderr
    assert sink.messages == []
    for delivery in deliveries(tmp_path):
        assert (delivery["status"], delivery["attempts"], delivery["next_try"]) == ("pending", 0, None)
        assert re.search(cause, delivery["last_error"])  # `briefings outbox` shows why


@pytest.mark.parametrize("make_fault, cause", [(missing_ca_file, "does not exist"), (not_pem_ca_file, "holds no PEM")],
                         ids=["missing", "not-pem"])
def test_check_refuses_a_broken_ca_file(tmp_path, smtp_sink, cli_run, make_fault, cause):
    cfg = write_config(tmp_path, [], corpus=None, extra=mail_config(25, EVERYONE, extra_smtp=make_fault(None, tmp_path)))
    result = cli_run("--config", cfg, "check")
    assert result.exit_code == 2
    line = next(i for i, text in enumerate(cfg.read_text().splitlines(), 1) if text.startswith("ca_file"))
    assert f"config.toml:{line}: [smtp] ca_file: " in result.stderr and cause in result.stderr


class ClosingServer:
    """Accepts TCP connections on 127.0.0.1 and closes each at once, before any greeting; counts them."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self):
        self.sock.close()


@pytest.fixture
def closing_server():
    server = ClosingServer()
    yield server
    server.close()


@pytest.mark.parametrize("down, cause", [("refused", "connection refused"), ("closes", "Connection unexpectedly closed")])
def test_a_down_server_is_one_line_one_try_and_one_backoff_for_the_batch(tmp_path, feed_server, cli_run, request,
                                                                         down, cause):
    closing = request.getfixturevalue("closing_server") if down == "closes" else None
    port = closing.port if closing else free_port()
    cfg = configure(tmp_path, feed_server, port, security="none")
    cfg.write_text(cfg.read_text().replace("retry_minutes = 0", "retry_minutes = 30"))
    result = cli_run("--config", cfg, "run")
    assert result.exit_code == 0
    naming = [line for line in result.stderr.splitlines() if cause in line]
    assert naming == [f"e-mail: cannot connect to 127.0.0.1:{port}: {cause}; 3 deliveries not sent, one retry for all"]
    if closing:
        assert closing.accepted == 1  # one connect for three recipients
    rows = deliveries(tmp_path)
    assert [(d["status"], d["attempts"]) for d in rows] == [("pending", 1)] * 3
    assert len({d["next_try"] for d in rows}) == 1 and rows[0]["next_try"] is not None
    when = datetime.fromisoformat(rows[0]["next_try"])
    waiting = cli_run("--config", cfg, "send")
    assert waiting.exit_code == 0  # nothing was due
    assert f"3 deliveries waiting for a retry, next at {when:%H:%M} UTC." in waiting.stderr.replace(f"{when:%Y-%m-%d} ", "")
    if closing:
        assert closing.accepted == 1  # waiting out the backoff tries nothing
