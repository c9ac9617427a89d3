"""Webhooks: the second delivery channel, posted to a real HTTP server on 127.0.0.1 that records every request.

Each webhook must receive exactly one accepted post of each briefing, through
the same outbox as e-mail, whatever the receiver answers in between.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import db_rows, deliveries, fixture_feed, free_port, mail_config, write_config

SECRET_PATH = "/services/T000/B000/s3cr3t"


class HookServer:
    """Records every POST (path, headers, JSON body) and answers from a script: one (status, headers, body,
    delay) per request, in order; 200 once the script is used up."""

    def __init__(self):
        self.requests: list[dict] = []
        self.script: list[tuple] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, headers, reply, delay = server.script.pop(0) if server.script else (200, {}, b"ok", 0)
                server.requests.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body),
                                        "status": status})
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except OSError:
                    pass  # the client gave up (a timeout test)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{SECRET_PATH}"

    @property
    def accepted(self) -> list[dict]:
        return [r for r in self.requests if 200 <= r["status"] < 300]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def hook():
    server = HookServer()
    yield server
    server.close()


def webhook(url: str, fmt: str = "json", name: str = "Desk", **more) -> str:
    lines = ["[[webhooks]]", f'name = "{name}"', f'url = "{url}"', f'format = "{fmt}"', "retry_minutes = 0"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in more.items()]
    return "\n".join(lines) + "\n"


def setup(tmp_path, feed_server, extra: str):
    url = feed_server.add("/norms.rss", fixture_feed("norms.rss"))
    return write_config(tmp_path, [("Norms Watch", url)], corpus=None, extra=extra)


def stored_briefing(tmp_path) -> tuple[str, dict]:
    ((title, counts),) = db_rows(tmp_path, "SELECT title, theme_counts FROM briefings")
    return title, json.loads(counts)


def entry_links(tmp_path) -> set[str]:
    return {link for (link,) in db_rows(tmp_path, "SELECT link FROM entries WHERE briefing_id IS NOT NULL")}


def test_every_format_carries_the_title_counts_and_links(tmp_path, feed_server, hook, cli_run):
    cfg = setup(tmp_path, feed_server, webhook(hook.url, "slack", "Slack") + webhook(hook.url, "teams", "Teams")
                + webhook(hook.url, "json", "Json"))
    result = cli_run("--config", cfg, "run")
    assert result.exit_code == 0, result.output
    assert "Posted to 3 webhook(s)." in result.stderr
    title, counts = stored_briefing(tmp_path)
    links = entry_links(tmp_path)
    assert counts and links
    bodies = {}
    for request in hook.requests:
        bodies[request["headers"]["X-Briefings-Delivery"]] = request["body"]
    keys = {d["recipient"]: d["message_id"] for d in deliveries(tmp_path)}
    slack, teams, plain = (bodies[keys[n]] for n in ("Slack", "Teams", "Json"))

    assert slack["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "text": title}}
    mrkdwn = "\n".join(b["text"]["text"] for b in slack["blocks"][1:] if b["type"] == "section")
    assert title in slack["text"]
    assert {f"<{link}|" for link in links if f"<{link}|" in mrkdwn}, mrkdwn
    assert all(f"{n}" in mrkdwn for n in counts.values())

    assert (teams["@type"], teams["title"]) == ("MessageCard", title)
    facts = {f["name"]: int(f["value"]) for f in teams["sections"][0]["facts"]}
    assert sorted(facts.values()) == sorted(counts.values())
    assert any(f"]({link})" in teams["sections"][1]["text"] for link in links)

    assert plain["briefing"]["title"] == title
    assert {t["id"]: t["count"] for t in plain["briefing"]["themes"]} == counts
    assert plain["briefing"]["entries"] == sum(counts.values())
    assert plain["briefing"]["url"] is None  # no [output] base_url
    assert {t["link"] for t in plain["top"]} <= links and plain["top"]
    assert set(plain["top"][0]) == {"title", "link", "source", "theme", "theme_name"}
    assert {t["source"] for t in plain["top"]} == {"Norms Watch"}


def test_each_post_names_briefings_and_its_delivery(tmp_path, feed_server, hook, cli_run):
    cfg = setup(tmp_path, feed_server, webhook(hook.url))
    cfg.write_text(cfg.read_text().replace('dir = "archive"', 'dir = "archive"\nbase_url = "https://intranet.example.org/b/"'))
    assert cli_run("--config", cfg, "run").exit_code == 0
    (request,) = hook.requests
    (delivery,) = deliveries(tmp_path)
    assert request["path"] == SECRET_PATH
    assert request["headers"]["User-Agent"].startswith("briefings/")
    assert request["headers"]["Content-Type"].startswith("application/json")
    assert request["headers"]["Idempotency-Key"] == delivery["message_id"] != ""
    slug = db_rows(tmp_path, "SELECT slug FROM briefings")[0][0]
    assert request["body"]["briefing"]["url"] == f"https://intranet.example.org/b/{slug}.html"
    assert (delivery["channel"], delivery["recipient"], delivery["status"]) == ("webhook", "Desk", "sent")


def test_posted_exactly_once_across_runs_and_sends(tmp_path, feed_server, hook, cli_run):
    cfg = setup(tmp_path, feed_server, webhook(hook.url))
    assert cli_run("--config", cfg, "run").exit_code == 0
    again = cli_run("--config", cfg, "run")
    assert again.exit_code == 0 and "Nothing new" in again.stderr
    assert cli_run("--config", cfg, "send", "--now").exit_code == 0
    assert len(hook.requests) == 1


def test_a_server_error_is_retried_and_the_briefing_posted_once(tmp_path, feed_server, hook, cli_run):
    hook.script = [(500, {}, b"upstream down", 0)]
    cfg = setup(tmp_path, feed_server, webhook(hook.url))
    first = cli_run("--config", cfg, "run")
    assert first.exit_code == 0, first.output
    assert "webhook Desk: 127.0.0.1" in first.stderr and "answered 500" in first.stderr and "will retry" in first.stderr
    (delivery,) = deliveries(tmp_path)
    assert (delivery["status"], delivery["attempts"]) == ("pending", 1)
    listed = cli_run("--config", cfg, "outbox").stdout
    assert "webhook:Desk" in listed and "answered 500" in listed
    assert "s3cr3t" not in listed + first.stderr  # the URL's secret path is never shown
    sent = cli_run("--config", cfg, "send")
    assert sent.exit_code == 0, sent.output
    assert "Posted to 1 webhook(s)." in sent.stderr
    assert [r["status"] for r in hook.requests] == [500, 200]
    assert len({r["headers"]["Idempotency-Key"] for r in hook.requests}) == 1  # the same delivery, twice tried
    (delivery,) = deliveries(tmp_path)
    assert (delivery["status"], delivery["attempts"]) == ("sent", 2)
    assert cli_run("--config", cfg, "send", "--now").exit_code == 0
    assert len(hook.accepted) == 1


def test_a_client_error_fails_the_webhook_for_good_in_one_line(tmp_path, feed_server, hook, cli_run):
    hook.script = [(400, {"Content-Type": "text/plain"}, b"invalid_payload", 0)]
    cfg = setup(tmp_path, feed_server, webhook(hook.url))
    result = cli_run("--config", cfg, "run")
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if "Desk" in line]
    port = hook.httpd.server_address[1]
    assert lines == [f"webhook Desk FAILED: 127.0.0.1:{port} answered 400 Bad Request: invalid_payload"
                     " (see `briefings outbox`)"]
    (delivery,) = deliveries(tmp_path)
    assert (delivery["status"], delivery["attempts"]) == ("failed", 1)
    assert cli_run("--config", cfg, "send", "--now").exit_code == 0
    assert len(hook.requests) == 1  # never tried again
    assert "failed" in cli_run("--config", cfg, "outbox").stdout


def test_a_timeout_is_temporary(tmp_path, feed_server, hook, cli_run):
    hook.script = [(200, {}, b"late", 2)]
    cfg = setup(tmp_path, feed_server, webhook(hook.url, timeout=0.5))
    result = cli_run("--config", cfg, "run")
    assert f"webhook Desk: 127.0.0.1:{hook.httpd.server_address[1]} timed out after 0.5 s; will retry" in result.stderr
    (delivery,) = deliveries(tmp_path)
    assert (delivery["status"], delivery["attempts"]) == ("pending", 1)
    assert cli_run("--config", cfg, "send").exit_code == 0
    assert deliveries(tmp_path)[0]["status"] == "sent"


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(tmp_path, feed_server, hook, cli_run, status):
    hook.script = [(status, {"Retry-After": "3600"}, b"slow down", 0)]
    cfg = setup(tmp_path, feed_server, webhook(hook.url))  # retry_minutes = 0: the wait is the server's
    before = datetime.now(timezone.utc)
    cli_run("--config", cfg, "run")
    (delivery,) = deliveries(tmp_path)
    assert delivery["status"] == "pending"
    assert datetime.fromisoformat(delivery["next_try"]) >= before + timedelta(seconds=3599)
    assert cli_run("--config", cfg, "send").exit_code == 0
    assert len(hook.requests) == 1  # not before the hour is up
    assert "1 delivery waiting for a retry" in cli_run("--config", cfg, "send").stderr


@pytest.mark.parametrize(
    "value,seconds",
    [("120", 120.0), ("Mon, 23 Nov 2026 09:00:00 GMT", 3600.0), ("Mon, 23 Nov 2026 07:00:00 GMT", 0.0),
     ("soon", None), ("", None)],
)
def test_retry_after_values(value, seconds):
    from briefings.deliver.channels import retry_after

    assert retry_after(value, now=datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)) == seconds


def test_themes_filter_what_a_webhook_gets(tmp_path, feed_server, hook, cli_run):
    cfg = setup(tmp_path, feed_server, webhook(hook.url, name="All"))
    assert cli_run("--config", cfg, "run", "--dry-run").exit_code == 0
    _, counts = next(iter(_counts_of_dry_run(cli_run, cfg)))
    one, *rest = sorted(counts)
    assert rest, "the fixture feed covers more than one theme"
    absent = next(t for t in ("harmonization", "capacity-building", "collaboration", "risk-reduction",
                              "confidence-building", "international-fora", "critical-infrastructure")
                  if t not in counts)
    cfg.write_text(cfg.read_text() + webhook(hook.url, name="One", themes=[one]) +
                   webhook(hook.url, name="None", themes=[absent]))
    assert cli_run("--config", cfg, "run").exit_code == 0
    by_name = {d["recipient"]: d for d in deliveries(tmp_path)}
    assert by_name["None"]["status"] == "skipped"
    bodies = {r["headers"]["Idempotency-Key"]: r["body"] for r in hook.requests}
    assert len(bodies) == 2  # nothing posted to "None"
    mine = bodies[by_name["One"]["message_id"]]
    assert [t["id"] for t in mine["briefing"]["themes"]] == [one]
    assert {t["theme"] for t in mine["top"]} == {one}
    assert sorted(t["id"] for t in bodies[by_name["All"]["message_id"]]["briefing"]["themes"]) == sorted(counts)


def _counts_of_dry_run(cli_run, cfg):
    report = json.loads(cli_run("--config", cfg, "run", "--dry-run", "--json").stdout)
    yield report["briefing"]["title"], report["briefing"]["themes"]


def test_webhooks_and_email_each_get_one_copy_and_a_dead_mail_server_stops_only_email(
        tmp_path, feed_server, hook, smtp_sink, cli_run):
    port = free_port()  # nothing listens there yet
    cfg = setup(tmp_path, feed_server, mail_config(port, [{"email": "ana@example.org"}]) + webhook(hook.url))
    result = cli_run("--config", cfg, "run")
    assert f"e-mail: cannot connect to 127.0.0.1:{port}: connection refused; 1 delivery not sent" in result.stderr
    assert "Posted to 1 webhook(s)." in result.stderr
    status = {d["recipient"]: (d["channel"], d["status"]) for d in deliveries(tmp_path)}
    assert status == {"ana@example.org": ("email", "pending"), "Desk": ("webhook", "sent")}
    sink = smtp_sink()
    cfg.write_text(cfg.read_text().replace(f"port = {port}", f"port = {sink.port}"))
    sent = cli_run("--config", cfg, "send", "--now")
    assert sent.exit_code == 0, sent.output
    assert sink.copies() == {"ana@example.org": 1} and len(hook.requests) == 1


def test_check_lists_the_webhooks(tmp_path, feed_server, hook, cli_run):
    cfg = setup(tmp_path, feed_server, webhook(hook.url, "slack", themes=["international-fora"]))
    result = cli_run("--config", cfg, "check")
    assert result.exit_code == 0, result.output
    assert "webhooks:     Desk (slack, international-fora)" in result.stdout
    assert "s3cr3t" not in result.output


@pytest.mark.parametrize(
    "table,message",
    [
        ('url = "ftp://hooks.example.org/x"\nformat = "json"', "[webhooks] url: 'ftp://hooks.example.org/x' must be an http or https URL"),
        ('url = "https://hooks.example.org/x"\nformat = "discord"', "[webhooks] format: must be slack, teams or json, got 'discord'"),
        ('url = "https://hooks.example.org/x"\nthemes = ["nope"]', "[webhooks] themes: unknown theme id 'nope'"),
        ('url = "https://hooks.example.org/x"\ntimeout = 0', "[webhooks] timeout: must be more than 0"),
        ('url = "https://hooks.example.org/x"\nsecret = "x"', "[webhooks] secret: unknown key"),
    ],
    ids=["scheme", "format", "theme", "timeout", "key"],
)
def test_a_broken_webhook_table_is_one_line_naming_it(tmp_path, cli_run, table, message):
    cfg = write_config(tmp_path, corpus=None, extra=f"[[webhooks]]\n{table}\n")
    result = cli_run("--config", cfg, "check")
    assert result.exit_code == 2
    assert message in result.stderr and "config.toml:" in result.stderr
    assert "Traceback" not in result.stderr


def test_email_owed_after_smtp_is_removed_waits_and_says_why(tmp_path, feed_server, hook, cli_run):
    port = free_port()  # nothing listens: the e-mail stays owed
    mail = mail_config(port, [{"email": "ana@example.org"}])
    cfg = setup(tmp_path, feed_server, mail)
    cli_run("--config", cfg, "run")
    cfg.write_text(cfg.read_text().replace(mail, webhook(hook.url)))  # [smtp] and the recipient gone, a webhook added
    sent = cli_run("--config", cfg, "send", "--now")
    assert sent.exit_code == 1
    assert "e-mail: messages are pending but [smtp] host is not set" in sent.stderr
    (delivery,) = deliveries(tmp_path)
    assert (delivery["status"], delivery["attempts"]) == ("pending", 1)  # the fault cost no try
    assert "[smtp] host is not set" in delivery["last_error"]
