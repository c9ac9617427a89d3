"""Delivery over SMTP: a real aiosmtpd server on 127.0.0.1, a real outbox in SQLite.

Each recipient must hold exactly one copy of each briefing, whatever the
server or the process does in between.
"""

from __future__ import annotations

import html as html_module
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import db_rows, deliveries, fixture_feed, free_port, mail_config, state_db, write_config

pytestmark = pytest.mark.usefixtures("backend")  # each test on SQLite and on PostgreSQL

ANA = {"email": "ana@example.org", "name": "Ana Diplomat"}
BEN = {"email": "ben@example.org", "name": "Ben", "themes": ["confidence-building"]}
CAROL = {"email": "carol@example.org"}


def setup(tmp_path, feed_server, port, recipients, **mail):
    url = feed_server.add("/norms.rss", fixture_feed("norms.rss"))
    return write_config(tmp_path, [("Norms Watch", url)], corpus=None, extra=mail_config(port, recipients, **mail))


def test_messages_arrive_with_every_header(tmp_path, feed_server, smtp_sink, cli_run):
    sink = smtp_sink()
    cfg = setup(tmp_path, feed_server, sink.port, [ANA, BEN])
    result = cli_run("--config", cfg, "run")
    assert result.exit_code == 0, result.output
    assert "E-mailed 2 recipient(s)." in result.stderr
    assert sink.copies() == {"ana@example.org": 1, "ben@example.org": 1}
    by_to = {m["To"].addresses[0].addr_spec: m for m in sink.parsed()}
    ana, ben = by_to["ana@example.org"], by_to["ben@example.org"]
    stored = {d["recipient"]: d for d in deliveries(tmp_path)}
    for address, message in by_to.items():
        assert len(message["To"].addresses) == 1
        assert message["From"].addresses[0].addr_spec == "briefings@norms.example.org"
        assert message["Reply-To"] == "desk@norms.example.org"
        assert message["Date"].datetime.tzinfo is not None
        assert message["Message-ID"] == stored[address]["message_id"]
        assert message["Message-ID"].endswith("@norms.example.org>")
        assert message["List-Id"].endswith(".norms.example.org>")
        unsubscribe = message["List-Unsubscribe"]
        assert "<mailto:leave@norms.example.org?subject=unsubscribe>" in unsubscribe
        assert f"<https://norms.example.org/unsubscribe?who={address}>" in unsubscribe
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message.get_content_type() == "multipart/alternative"
        parts = [p.get_content_type() for p in message.iter_parts()]
        assert parts == ["text/plain", "text/html"]
        assert all(p.get_content_charset() == "utf-8" for p in message.iter_parts())
        html = message.get_body(("html",)).get_content()
        assert f"https://norms.example.org/unsubscribe?who={address}" in html  # personal, after inlining
        assert "unsubscribe.briefings.invalid" not in html
        assert "Cyber Norms Briefing" in message["Subject"] and "\n" not in message["Subject"]
    assert ana["To"].addresses[0].display_name == "Ana Diplomat"
    # Ben follows one theme: his briefing has that section only.
    ben_text = ben.get_body(("plain",)).get_content()
    ana_text = ana.get_body(("plain",)).get_content()
    assert "OSCE participating States test their cyber hotline" in ben_text
    assert "take down a ransomware botnet" in ana_text and "take down a ransomware botnet" not in ben_text
    assert " on 1 theme, " in ben["Subject"] and " on 1 theme, " not in ana["Subject"]
    # Nothing new: no second message.
    cli_run("--config", cfg, "run")
    assert sink.copies() == {"ana@example.org": 1, "ben@example.org": 1}


def test_header_injection_through_the_title_is_impossible(tmp_path, feed_server, smtp_sink, cli_run):
    sink = smtp_sink()
    url = feed_server.add("/norms.rss", fixture_feed("norms.rss"))
    extra = mail_config(sink.port, [ANA]) + '[briefing]\ntitle = "Norms\\r\\nBcc: victim@example.org\\r\\n\\r\\nbody"\n'
    cfg = write_config(tmp_path, [("Norms Watch", url)], corpus=None, extra=extra)
    assert cli_run("--config", cfg, "run").exit_code == 0
    (message,) = sink.parsed()
    assert message["Bcc"] is None
    assert message["Subject"].strip().startswith("Norms Bcc: victim@example.org body")
    assert sink.copies() == {"ana@example.org": 1}


def test_recipient_with_nothing_on_their_themes_gets_nothing(tmp_path, feed_server, smtp_sink, cli_run):
    sink = smtp_sink()
    dan = {"email": "dan@example.org", "themes": ["harmonization"]}
    cfg = setup(tmp_path, feed_server, sink.port, [ANA, dan])
    cli_run("--config", cfg, "run")
    assert sink.copies() == {"ana@example.org": 1}
    assert {d["recipient"]: d["status"] for d in deliveries(tmp_path)} == {"ana@example.org": "sent", "dan@example.org": "skipped"}


def test_starttls_and_auth_with_password_from_environment(tmp_path, feed_server, smtp_sink, cli_run):
    sink = smtp_sink(tls="starttls", users={"briefer": "s3cret-pw"})
    ca = sink.write_ca(tmp_path)
    extra = f'username = "briefer"\npassword_env = "BRIEFINGS_TEST_SMTP_PW"\nca_file = "{ca}"'
    cfg = setup(tmp_path, feed_server, sink.port, [ANA], security="starttls", extra_smtp=extra)
    env = {"BRIEFINGS_TEST_SMTP_PW": "s3cret-pw"}
    check = cli_run("--config", cfg, "check", "--smtp", env=env)
    assert check.exit_code == 0, check.output
    assert "encryption: TLS (starttls)" in check.stdout and "logged in as briefer" in check.stdout
    assert sink.messages == []  # check sends nothing
    result = cli_run("--config", cfg, "run", "--json", env=env)
    assert result.exit_code == 0
    assert sink.copies() == {"ana@example.org": 1} and sink.logins == ["briefer", "briefer"]
    assert "s3cret-pw" not in result.stdout + result.stderr
    # A wrong password: refused with the reason, nothing counted against the delivery.
    bad = cli_run("--config", cfg, "check", "--smtp", env={"BRIEFINGS_TEST_SMTP_PW": "wrong"})
    assert bad.exit_code == 1 and "refused the login for briefer" in bad.stderr
    assert "wrong" not in bad.stderr
    missing = cli_run("--config", cfg, "check", "--smtp", env={"BRIEFINGS_TEST_SMTP_PW": None})
    assert missing.exit_code == 1 and "BRIEFINGS_TEST_SMTP_PW, which is not set" in missing.stderr


def test_implicit_tls(tmp_path, feed_server, smtp_sink, cli_run):
    sink = smtp_sink(tls="ssl")
    ca = sink.write_ca(tmp_path)
    cfg = setup(tmp_path, feed_server, sink.port, [ANA], security="ssl", extra_smtp=f'ca_file = "{ca}"')
    assert cli_run("--config", cfg, "run").exit_code == 0
    assert sink.copies() == {"ana@example.org": 1}


def test_refused_connection_keeps_everything_pending(tmp_path, feed_server, smtp_sink, cli_run):
    port = free_port()
    cfg = setup(tmp_path, feed_server, port, [ANA, CAROL])
    result = cli_run("--config", cfg, "run")
    assert result.exit_code == 0
    assert f"e-mail: cannot connect to 127.0.0.1:{port}: connection refused; 2 deliveries not sent" in result.stderr
    assert [d["status"] for d in deliveries(tmp_path)] == ["pending", "pending"]
    outbox = cli_run("--config", cfg, "outbox").stdout
    assert "ana@example.org" in outbox and "connection refused" in outbox
    # The server comes up: `send` delivers each once.
    sink = smtp_sink()
    cfg.write_text(cfg.read_text().replace(f"port = {port}", f"port = {sink.port}"))
    sent = cli_run("--config", cfg, "send")
    assert sent.exit_code == 0, sent.output
    assert sink.copies() == {"ana@example.org": 1, "carol@example.org": 1}
    assert cli_run("--config", cfg, "send").exit_code == 0
    assert sink.copies() == {"ana@example.org": 1, "carol@example.org": 1}


def test_4xx_is_retried_later_and_5xx_fails_one_recipient(tmp_path, feed_server, smtp_sink, cli_run):
    sink = smtp_sink()
    sink.refuse = {"ana@example.org": "451 4.3.0 Try again later", "carol@example.org": "550 5.1.1 No such user"}
    sink.data_reply = ["421 4.7.0 Too busy, closing"]  # the first DATA (Ben's)
    eve = {"email": "eve@example.org"}
    cfg = setup(tmp_path, feed_server, sink.port, [ANA, BEN, CAROL, eve])
    result = cli_run("--config", cfg, "run")
    assert "e-mail to ana@example.org: 451 4.3.0 Try again later; will retry" in result.stderr
    assert "e-mail to ben@example.org: 421 4.7.0 Too busy, closing; will retry" in result.stderr
    assert "e-mail to carol@example.org FAILED: 550 5.1.1 No such user" in result.stderr
    assert sink.copies() == {"eve@example.org": 1}  # the others went on, on a new connection after the 421
    status = {d["recipient"]: d["status"] for d in deliveries(tmp_path)}
    assert status == {"ana@example.org": "pending", "ben@example.org": "pending", "carol@example.org": "failed",
                      "eve@example.org": "sent"}
    assert "550 5.1.1 No such user" in cli_run("--config", cfg, "outbox").stdout
    sink.refuse = {}
    assert cli_run("--config", cfg, "send").exit_code == 0
    assert sink.copies() == {"eve@example.org": 1, "ana@example.org": 1, "ben@example.org": 1}
    assert {d["recipient"]: d["attempts"] for d in deliveries(tmp_path)} == {
        "ana@example.org": 2, "ben@example.org": 2, "carol@example.org": 1, "eve@example.org": 1}


def test_connection_dropped_in_the_middle_of_data(tmp_path, feed_server, smtp_sink, cli_run):
    sink = smtp_sink()
    sink.drop_data = 1
    cfg = setup(tmp_path, feed_server, sink.port, [ANA, CAROL])
    result = cli_run("--config", cfg, "run")
    assert "e-mail to ana@example.org: the server closed the connection" in result.stderr
    assert sink.copies() == {"carol@example.org": 1}  # reconnected for Carol
    cli_run("--config", cfg, "send")
    assert sink.copies() == {"carol@example.org": 1, "ana@example.org": 1}


def test_temporary_failures_end_in_failed_after_max_attempts(tmp_path, feed_server, smtp_sink, cli_run):
    sink = smtp_sink()
    sink.refuse = {"ana@example.org": "452 4.2.2 Mailbox full"}
    cfg = setup(tmp_path, feed_server, sink.port, [ANA], extra_smtp="max_attempts = 3")
    cli_run("--config", cfg, "run")
    cli_run("--config", cfg, "send")
    last = cli_run("--config", cfg, "send")
    assert last.exit_code == 1
    assert "FAILED: 452 4.2.2 Mailbox full (after 3 tries)" in last.stderr
    (delivery,) = deliveries(tmp_path)
    assert delivery["status"] == "failed" and delivery["attempts"] == 3
    assert "failed" in cli_run("--config", cfg, "outbox").stdout
    assert cli_run("--config", cfg, "send").exit_code == 0  # nothing due: failed is not retried silently


def test_backoff_waits_before_retrying(tmp_path, feed_server, smtp_sink, cli_run):
    sink = smtp_sink()
    sink.refuse = {"ana@example.org": "451 4.3.0 Later"}
    url = feed_server.add("/norms.rss", fixture_feed("norms.rss"))
    extra = mail_config(sink.port, [ANA]).replace("retry_minutes = 0", "retry_minutes = 30")
    cfg = write_config(tmp_path, [("Norms Watch", url)], corpus=None, extra=extra)
    cli_run("--config", cfg, "run")
    sink.refuse = {}
    waiting = cli_run("--config", cfg, "send")
    assert sink.messages == [] and waiting.exit_code == 0
    assert "next try" in cli_run("--config", cfg, "outbox").stdout
    cli_run("--config", cfg, "send", "--now")
    assert sink.copies() == {"ana@example.org": 1}


def test_each_retry_waits_twice_as_long_as_the_one_before_up_to_a_day(tmp_path, feed_server, smtp_sink, cli_run):
    from datetime import datetime, timedelta, timezone

    sink = smtp_sink()
    sink.refuse = {"ana@example.org": "451 4.3.0 Later"}
    url = feed_server.add("/norms.rss", fixture_feed("norms.rss"))
    extra = mail_config(sink.port, [ANA], extra_smtp="max_attempts = 10").replace("retry_minutes = 0", "retry_minutes = 240")
    cfg = write_config(tmp_path, [("Norms Watch", url)], corpus=None, extra=extra)
    waits = []
    for attempt in range(5):
        before = datetime.now(timezone.utc).replace(microsecond=0)
        result = cli_run("--config", cfg, *(["run"] if attempt == 0 else ["send", "--now"]))
        after = datetime.now(timezone.utc)
        assert "451 4.3.0 Later; will retry" in result.stderr, result.stderr
        (delivery,) = deliveries(tmp_path)
        assert delivery["attempts"] == attempt + 1 and delivery["status"] == "pending"
        next_try = datetime.fromisoformat(delivery["next_try"])
        assert after - before < timedelta(seconds=30)  # so rounding to the minute reads the wait exactly
        waits.append(round((next_try - before).total_seconds() / 60))
    assert waits == [240, 480, 960, 1440, 1440]  # [smtp] retry_minutes, doubled each time, at most a day
    assert sink.messages == []


@pytest.mark.parametrize("tries", [40, 998])
def test_a_delivery_refused_for_the_hundredth_time_still_waits_a_day(tmp_path, feed_server, smtp_sink, cli_run, tries):
    from datetime import datetime, timedelta, timezone

    sink = smtp_sink()
    sink.refuse = {"ana@example.org": "451 4.3.0 Later"}
    url = feed_server.add("/norms.rss", fixture_feed("norms.rss"))
    extra = mail_config(sink.port, [ANA], extra_smtp="max_attempts = 1000").replace("retry_minutes = 0", "retry_minutes = 240")
    cfg = write_config(tmp_path, [("Norms Watch", url)], corpus=None, extra=extra)
    cli_run("--config", cfg, "run")
    db = state_db(tmp_path)
    db.execute("UPDATE deliveries SET attempts = ?", (tries,))
    db.commit()
    db.close()
    before = datetime.now(timezone.utc).replace(microsecond=0)
    result = cli_run("--config", cfg, "send", "--now")
    assert "451 4.3.0 Later; will retry" in result.stderr and "Traceback" not in result.stderr, result.stderr
    (delivery,) = deliveries(tmp_path)
    assert (delivery["attempts"], delivery["status"]) == (tries + 1, "pending")
    wait = datetime.fromisoformat(delivery["next_try"]) - before
    assert timedelta(days=1) <= wait < timedelta(days=1, seconds=30)


def test_eml_copies_in_the_archive(tmp_path, feed_server, smtp_sink, cli_run):
    sink = smtp_sink()
    url = feed_server.add("/norms.rss", fixture_feed("norms.rss"))
    cfg = write_config(tmp_path, [("Norms Watch", url)], corpus=None, extra=mail_config(sink.port, [ANA]))
    cfg.write_text(cfg.read_text().replace('dir = "archive"', 'dir = "archive"\neml = true'))
    cli_run("--config", cfg, "run")
    (eml,) = (tmp_path / "archive" / "eml").glob("*.eml")
    assert eml.name.endswith("--ana@example.org.eml")
    import email
    import email.policy

    saved = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    (sent,) = sink.parsed()
    assert saved["Message-ID"] == sent["Message-ID"] and saved["To"] == sent["To"]
    assert saved.get_body(("plain",)).get_content() == sent.get_body(("plain",)).get_content().replace("\r\n", "\n")


def test_bad_recipient_is_a_config_error_with_line(tmp_path, cli_run):
    cfg = write_config(tmp_path, [], corpus=None, extra=mail_config(25, [ANA, {"email": "not an address"}]))
    result = cli_run("--config", cfg, "check")
    assert result.exit_code == 2
    line = next(i for i, text in enumerate(cfg.read_text().splitlines(), 1) if "not an address" in text)
    assert f"config.toml:{line}: [recipients] email: not a valid e-mail address" in result.stderr
    cfg2 = write_config(tmp_path / "b", [], corpus=None, extra=mail_config(25, [{"email": "x@example.org", "themes": ["nope"]}]))
    result = cli_run("--config", cfg2, "check")
    assert result.exit_code == 2 and "unknown theme id 'nope'" in result.stderr


def test_killed_between_two_recipients_then_rerun_sends_each_once(tmp_path, feed_server, smtp_sink):
    sink = smtp_sink()
    sink.hang_rcpt = "ben@example.org"
    everyone = [ANA, {"email": "ben@example.org"}, CAROL]
    cfg = setup(tmp_path, feed_server, sink.port, everyone)
    command = [sys.executable, "-m", "briefings", "--config", str(cfg), "run"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert sink.hang_reached.wait(60), "the run never reached the second recipient"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert sink.copies() == {"ana@example.org": 1}
    assert [d["status"] for d in deliveries(tmp_path)] == ["sent", "pending", "pending"]
    sink.hang_rcpt = None
    again = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "Nothing new since the last briefing" in again.stderr
    assert sink.copies() == {"ana@example.org": 1, "ben@example.org": 1, "carol@example.org": 1}
    assert db_rows(tmp_path, "SELECT COUNT(*) FROM briefings") == [(1,)]
    assert db_rows(tmp_path, "SELECT COUNT(*) FROM entries WHERE briefing_id IS NULL") == [(0,)]


def test_every_message_says_mime_version_1_0(tmp_path, feed_server, smtp_sink, cli_run):
    sink = smtp_sink()
    cfg = setup(tmp_path, feed_server, sink.port, [ANA, BEN])
    assert cli_run("--config", cfg, "run").exit_code == 0
    assert len(sink.messages) == 2
    for _, raw in sink.messages:
        head = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
        assert head.splitlines().count(b"MIME-Version: 1.0") == 1, head


def _no_reply_to(text: str) -> str:
    return text.replace('reply_to = "desk@norms.example.org"\n', "")


@pytest.mark.parametrize(
    "email, edit, header, one_click",
    [
        ("send_empty = false", str, "<mailto:desk@norms.example.org?subject=unsubscribe>", False),
        ("send_empty = false", _no_reply_to, "<mailto:briefings@norms.example.org?subject=unsubscribe>", False),
        ('unsubscribe_mailto = "leave@norms.example.org"', str, "<mailto:leave@norms.example.org?subject=unsubscribe>",
         False),
        ('unsubscribe_url = "https://norms.example.org/u?who={email}"', str,
         "<https://norms.example.org/u?who=ana@example.org>", True),
        # {email} before the @: the recipient's @ is written = (VERP), so the address keeps one @
        ('unsubscribe_mailto = "leave+{email}@norms.example.org"', str,
         "<mailto:leave+ana%3Dexample.org@norms.example.org?subject=unsubscribe>", False),
    ],
    ids=["reply-to", "from", "mailto", "url", "verp"],
)
def test_list_unsubscribe_is_always_sent_and_the_footer_shows_it(tmp_path, feed_server, smtp_sink, cli_run, email, edit,
                                                                 header, one_click):
    sink = smtp_sink()
    cfg = setup(tmp_path, feed_server, sink.port, [ANA], email=email)
    cfg.write_text(edit(cfg.read_text()))
    check = cli_run("--config", cfg, "check")
    assert check.exit_code == 0, check.output
    assert ("no one-click unsubscribe" in check.stderr) is not one_click
    assert cli_run("--config", cfg, "run").exit_code == 0
    (message,) = sink.parsed()
    assert message["List-Unsubscribe"].strip() == header  # folded when long
    assert message["List-Unsubscribe-Post"] == ("List-Unsubscribe=One-Click" if one_click else None)
    # The footer of both parts offers the same link; the archive's copy offers none (it has no recipient).
    link = header.strip("<>")
    assert f'href="{html_module.escape(link)}"' in message.get_body(("html",)).get_content()
    assert f"Unsubscribe:\n{link}\n" in message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    (text,) = (tmp_path / "archive").glob("*.txt")
    assert "Unsubscribe" not in text.read_text(encoding="utf-8")


def _second_week(feed: bytes) -> bytes:
    """The fixture feed a week later: one more item on international fora, one on confidence-building."""
    items = (
        b"<item><title>UN Open-Ended Working Group opens its second session in New York</title>"
        b"<link>https://norms.example.org/2026/oewg-second</link><guid isPermaLink=\"false\">nw-201</guid>"
        b"<pubDate>Wed, 25 Nov 2026 08:15:00 GMT</pubDate><description>Delegations at the United Nations "
        b"discussed norms of responsible state behaviour in cyberspace and a code of conduct.</description></item>"
        b"<item><title>OSCE States agree two new confidence-building measures</title>"
        b"<link>https://norms.example.org/2026/osce-cbm-new</link><guid isPermaLink=\"false\">nw-203</guid>"
        b"<pubDate>Wed, 25 Nov 2026 09:15:00 GMT</pubDate><description>Participating States adopted two more "
        b"confidence-building measures on points of contact and on notification of incidents, to reduce the "
        b"risk of escalation.</description></item>"
    )
    return feed.replace(b"</channel>", items + b"</channel>")


def test_a_filtered_recipient_gets_the_reading_list_and_the_change_since_last_time(tmp_path, feed_server, smtp_sink,
                                                                                    cli_run):
    sink = smtp_sink()
    fora = {"email": "fiona@example.org", "themes": ["international-fora"]}
    feed = fixture_feed("norms.rss")
    url = feed_server.add("/norms.rss", feed)
    cfg = write_config(tmp_path, [("Norms Watch", url)], extra=mail_config(sink.port, [ANA, fora]))
    assert cli_run("--config", cfg, "run").exit_code == 0
    feed_server.add("/norms.rss", _second_week(feed))
    assert cli_run("--config", cfg, "run").exit_code == 0
    second = [m for m in sink.parsed() if "second session in New York" in m.get_body(("plain",)).get_content()]
    by_to = {m["To"].addresses[0].addr_spec: m for m in second}
    assert set(by_to) == {"ana@example.org", "fiona@example.org"}
    for address, message in by_to.items():
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        assert "(right: change since the previous briefing)" in text, address
        assert "change since the previous briefing" in html, address
        assert "FROM THE READING LIST" in text and 'id="reading-list"' in html, address
    fiona = by_to["fiona@example.org"].get_body(("plain",)).get_content()
    reading = fiona.split("FROM THE READING LIST", 1)[1].split("\r\n--\r\n", 1)[0]
    topics = [line.rsplit("; on ", 1)[1] for line in reading.replace("\r\n  ", " ").splitlines() if "; on " in line]
    assert topics and set(topics) == {"International fora and diplomacy"}  # her theme only
    assert "two new confidence-building measures" not in fiona


@pytest.mark.parametrize("send_empty, copies", [(True, {"ana@example.org": 1, "dan@example.org": 1}),
                                                 (False, {"ana@example.org": 1})])
def test_send_empty(tmp_path, feed_server, smtp_sink, cli_run, send_empty, copies):
    sink = smtp_sink()
    dan = {"email": "dan@example.org", "themes": ["harmonization"]}
    cfg = setup(tmp_path, feed_server, sink.port, [ANA, dan], email=f"send_empty = {str(send_empty).lower()}")
    assert cli_run("--config", cfg, "run").exit_code == 0
    assert sink.copies() == copies
    status = {d["recipient"]: d["status"] for d in deliveries(tmp_path)}
    assert status["dan@example.org"] == ("sent" if send_empty else "skipped")
    if send_empty:
        (note,) = [m for m in sink.parsed() if m["To"].addresses[0].addr_spec == "dan@example.org"]
        text = note.get_body(("plain",)).get_content()
        assert "0 entries in 0 themes" in text and "OSCE" not in text


def test_a_stop_request_between_recipients_leaves_the_rest_pending(tmp_path, feed_server, smtp_sink, cli_run):
    from briefings.config import load
    from briefings.pipeline import send_outbox
    from briefings.store import Store

    sink = smtp_sink()
    port = free_port()  # nothing listens: the run stores the outbox and sends nothing
    cfg = setup(tmp_path, feed_server, port, [ANA, BEN, CAROL])
    cli_run("--config", cfg, "run")
    cfg.write_text(cfg.read_text().replace(f"port = {port}", f"port = {sink.port}"))
    config = load(cfg)
    with Store.open(config.state) as store:
        report = send_outbox(config, store, ignore_wait=True, stop=lambda: len(sink.messages) >= 1)
    assert report.stopped and report.sent == ["ana@example.org"]
    assert sink.copies() == {"ana@example.org": 1}
    assert [(d["status"], d["attempts"]) for d in deliveries(tmp_path)] == [("sent", 2), ("pending", 1), ("pending", 1)]
    assert cli_run("--config", cfg, "send", "--now").exit_code == 0
    assert sink.copies() == {"ana@example.org": 1, "ben@example.org": 1, "carol@example.org": 1}
