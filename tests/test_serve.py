"""`briefings serve` over real HTTP: uvicorn on 127.0.0.1, httpx and raw sockets, Chromium through Playwright."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import uvicorn

from briefings import config as config_module
from briefings.serve import tokens
from briefings.serve.app import create_app
from conftest import db_rows, deliveries, fixture_feed, free_port, mail_config, write_config
from test_render import LATER_ATOM, two_briefings

SECRET = "test-secret-that-signs-unsubscribe-links"
OEWG = "UN Open-Ended Working Group agrees annual progress report"


class Served:
    """The app under a real uvicorn on 127.0.0.1, in a thread."""

    def __init__(self, config, port: int | None = None):
        self.port = port or free_port()
        self.server = uvicorn.Server(uvicorn.Config(create_app(config), host="127.0.0.1", port=self.port,
                                                    log_config=None, access_log=False, lifespan="off",
                                                    h11_max_incomplete_event_size=32 * 1024))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        self.base = f"http://127.0.0.1:{self.port}"

    def raw(self, request: bytes) -> tuple[int, bytes]:
        """Send these exact bytes (no client normalizes the path) and read the answer's status and body."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as conn:
            conn.sendall(request)
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split(b" ", 2)[1]), body

    def close(self):
        self.server.should_exit = True
        self.thread.join(timeout=10)


def make_site(tmp_path, feed_server, cli_run):
    """Two briefings in a real archive and state file; the config."""
    return two_briefings(tmp_path, feed_server, cli_run)[0]


@pytest.fixture
def site(tmp_path, feed_server, cli_run, monkeypatch):
    monkeypatch.setenv("BRIEFINGS_SECRET", SECRET)
    cfg = make_site(tmp_path, feed_server, cli_run)
    served = Served(config_module.load(cfg))
    served.config = config_module.load(cfg)
    served.archive = tmp_path / "archive"
    yield served
    served.close()


# -- the archive, as it is on disk -----------------------------------------------------------


def test_the_archive_is_served_as_it_is_on_disk(site):
    pages = ["index.html", *(p.name for p in site.archive.glob("2026-*")), "feed.xml",
             *(f"themes/{p.name}" for p in (site.archive / "themes").iterdir())]
    with httpx.Client(base_url=site.base) as client:
        for name in pages:
            answer = client.get(f"/{name}")
            assert answer.status_code == 200, name
            assert answer.content == (site.archive / name).read_bytes(), name
        assert client.get("/").content == (site.archive / "index.html").read_bytes()
        assert client.get("/feed.xml").headers["content-type"].startswith("application/atom+xml")
        page = client.get("/index.html")
    assert "script-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "set-cookie" not in page.headers


@pytest.mark.parametrize("target", [
    b"/nothing-here.html",
    b"/../config.toml",
    b"/%2e%2e/config.toml",
    b"/..%2fconfig.toml",
    b"/themes/../../config.toml",
    b"/themes/..%2f..%2fconfig.toml",
    b"//etc/passwd",
    b"/%2fetc%2fpasswd",
    b"/state/briefings.sqlite3",
    b"/../state/briefings.sqlite3",
    b"/eml/message.eml",
    b"/.index.html.tmp",
    b"/%00index.html",
    b"/index.html%00.txt",
    b"/themes",
    b"/outside.html",  # a symbolic link out of the archive
    b"/C:%5cWindows%5cwin.ini",
])
def test_nothing_outside_the_archive_is_served(site, tmp_path, target):
    (tmp_path / "secret.html").write_text("<p>not for the web</p>")
    (site.archive / "outside.html").symlink_to(tmp_path / "secret.html")
    (site.archive / "eml").mkdir(exist_ok=True)
    (site.archive / "eml" / "message.eml").write_text("To: ana@example.org")
    (site.archive / ".index.html.tmp").write_text("half-written")
    status, body = site.raw(b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    assert status in (400, 404), (target, status)
    for leaked in (b"not for the web", b"ana@example.org", b"half-written", b"[state]", b"root:", b"Traceback"):
        assert leaked not in body


@pytest.mark.parametrize("request_bytes, status", [
    (b"PUT /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi", 405),
    (b"DELETE /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405),
    (b"POST /unsubscribe/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n" + b"a" * 100000, 413),
    (b"POST /unsubscribe/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
     + (b"4000\r\n" + b"a" * 0x4000 + b"\r\n") * 3 + b"0\r\n\r\n", 413),
    (b"GET /search?q=" + b"a" * 17000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 414),
    (b"POST /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 405),
])
def test_odd_and_oversized_requests_are_refused(site, request_bytes, status):
    got, body = site.raw(request_bytes)
    assert got == status
    assert b"Traceback" not in body


def test_a_fault_shows_no_stack_trace_to_the_browser(tmp_path, feed_server, cli_run, caplog):
    cfg = make_site(tmp_path, feed_server, cli_run)
    mine = tmp_path / "my-templates"
    mine.mkdir()
    (mine / "search.html.j2").write_text("{{ 1 // 0 }}")  # a bug at run time, not a template error
    cfg.write_text(cfg.read_text().replace("[fetch]", '[render]\ntemplates = "my-templates"\n[fetch]', 1))
    served = Served(config_module.load(cfg))
    try:
        with caplog.at_level("ERROR", logger="briefings.serve"):
            answer = httpx.get(f"{served.base}/search")
    finally:
        served.close()
    assert answer.status_code == 500
    assert "Traceback" not in answer.text and "ZeroDivisionError" not in answer.text
    assert "ZeroDivisionError" in caplog.text  # the log has it


# -- search ------------------------------------------------------------------------------


def test_search_finds_an_entry_by_a_phrase_from_its_body(site):
    # A phrase from the body of the OEWG story in norms.rss, not in its title.
    body = db_rows(site.archive.parent, f"SELECT summary_html FROM entries WHERE title = '{OEWG}'")[0][0]
    words = re.sub(r"<[^>]+>", " ", body).split()[3:7]
    answer = httpx.get(f"{site.base}/search", params={"q": '"' + " ".join(words) + '"'})
    assert answer.status_code == 200
    assert OEWG in answer.text
    assert "<mark>" in answer.text  # the matched words are shown


@pytest.mark.parametrize("q", ['"', '""', "-", "*", "AND OR NOT", "😀", "title:x", "(", "\x00", "x" * 10_240,
                               '" OR 1=1 --', "<script>alert(1)</script>", "%%%", "-oewg"])
def test_odd_queries_answer_cleanly(site, q):
    answer = httpx.get(f"{site.base}/search", params={"q": q})
    assert answer.status_code in (200, 400)
    assert "Traceback" not in answer.text
    assert "<script>alert" not in answer.text  # escaped, never markup
    if answer.status_code == 400:
        (message,) = re.findall(r'<p class="search-error" role="alert">([^<]*)</p>', answer.text)
        assert message and "\n" not in message


@pytest.mark.parametrize("params, says", [
    ({"q": "oewg", "since": "someday"}, "is not a date"),
    ({"q": "oewg", "theme": "no-such-theme"}, "no theme"),
    ({"q": "oewg", "limit": "many"}, "is not a whole number"),
])
def test_bad_filters_on_the_search_page_say_what_is_wrong(site, params, says):
    answer = httpx.get(f"{site.base}/search", params=params)
    assert answer.status_code == 400
    assert says in answer.text


def test_search_filters_by_theme_and_date(site):
    (theme,) = db_rows(site.archive.parent, f"SELECT theme FROM entries WHERE title = '{OEWG}'")[0]
    found = httpx.get(f"{site.base}/search", params={"q": "working group", "theme": theme}).text
    other = next(t.id for t in site.config.themes if t.id != theme)
    assert OEWG in found
    assert OEWG not in httpx.get(f"{site.base}/search", params={"q": "working group", "theme": other}).text
    assert OEWG not in httpx.get(f"{site.base}/search", params={"q": "working group", "since": "2999-01-01"}).text


def test_search_from_the_page_and_follow_a_result_with_scripts_disabled(site, browser):
    context = browser.new_context(java_script_enabled=False, viewport={"width": 375, "height": 800})
    try:
        page = context.new_page()
        page.goto(f"{site.base}/search")
        page.fill("input[name=q]", '"working group" -ransomware')
        page.click("button[type=submit]")
        page.wait_for_load_state("load")
        assert "/search?q=" in page.url
        result = page.locator("a.entry-link", has_text=OEWG)
        assert result.count() == 1
        assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0  # fits a phone
        result.click()
        page.wait_for_load_state("load")
        assert re.search(r"/2026-[\d-]+-cyber-norms-briefing(-\d)?\.html#entry-\d+$", page.url), page.url
        anchor = page.url.rsplit("#", 1)[1]
        assert OEWG in page.inner_text(f"#{anchor}")
    finally:
        context.close()


# -- unsubscribe -------------------------------------------------------------------------


def token_for(site, email: str, **kwargs) -> str:
    return tokens.make_token(SECRET, tokens.Subscriber(email, tokens.list_id(site.config)), **kwargs)


def suppressed(site) -> list[str]:
    return [r[0] for r in db_rows(site.archive.parent, "SELECT email FROM suppressions ORDER BY email")]


def test_one_click_unsubscribes_at_once_without_cookies(site):
    with httpx.Client(base_url=site.base) as client:  # a fresh client: no cookie, no login, no page visited
        answer = client.post(f"/unsubscribe/{token_for(site, 'ana@example.org')}",
                             content=b"List-Unsubscribe=One-Click",
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert client.cookies.jar is not None and len(client.cookies.jar) == 0
    assert answer.status_code == 200
    assert "set-cookie" not in answer.headers
    assert suppressed(site) == ["ana@example.org"]


def test_a_multipart_one_click_post_unsubscribes_too(site):
    answer = httpx.post(f"{site.base}/unsubscribe/{token_for(site, 'ben@example.org')}",
                        files={"List-Unsubscribe": (None, "One-Click")})
    assert answer.status_code == 200
    assert suppressed(site) == ["ben@example.org"]


@pytest.mark.parametrize("token", [
    "forged",
    "",
    "x" * 3000,
    "eyJyIjoiYW5hQGV4YW1wbGUub3JnIiwibCI6ImwifQ.AAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "%2e%2e%2fconfig.toml",
    "expired",
    "other-secret",
    "tampered",
])
def test_a_bad_token_gets_the_same_neutral_answer(site, token):
    good = token_for(site, "ana@example.org")
    if token == "expired":
        token = token_for(site, "ana@example.org", issued=datetime.now(timezone.utc) - timedelta(days=3 * 365))
    elif token == "other-secret":
        token = tokens.make_token("another secret", tokens.Subscriber("ana@example.org", tokens.list_id(site.config)))
    elif token == "tampered":
        token = good.replace(good.split(".")[0], tokens.make_token(SECRET, tokens.Subscriber("eve@example.org", "x")).split(".")[0])
    form = {"content": b"List-Unsubscribe=One-Click", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}
    bad = httpx.post(f"{site.base}/unsubscribe/{token}", **form)
    real = httpx.post(f"{site.base}/unsubscribe/{token_for(site, 'zed@example.org')}", **form)
    assert bad.status_code == 200 == real.status_code
    assert bad.text == real.text  # nothing tells a forged link from a real one
    assert httpx.get(f"{site.base}/unsubscribe/{token}").text == httpx.get(f"{site.base}/unsubscribe/{good}").text
    assert suppressed(site) == ["zed@example.org"]


def test_a_post_without_one_click_unsubscribes_no_one(site):
    answer = httpx.post(f"{site.base}/unsubscribe/{token_for(site, 'ana@example.org')}", content=b"hello=1",
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 200
    assert 'name="List-Unsubscribe" value="One-Click"' in answer.text  # the page with the button, again
    assert suppressed(site) == []


def test_unsubscribe_from_a_received_message_then_the_next_run_skips_that_recipient(
        tmp_path, feed_server, smtp_sink, cli_run, monkeypatch, browser):
    monkeypatch.setenv("BRIEFINGS_SECRET", SECRET)
    sink = smtp_sink()
    port = free_port()
    people = [{"email": "ana@example.org", "name": "Ana"}, {"email": "ben@example.org", "name": "Ben"}]
    extra = mail_config(sink.port, people, email='list_id = "norms.example.org"') + \
        f'[serve]\nport = {port}\npublic_url = "http://127.0.0.1:{port}/"\n'
    url = feed_server.add("/norms.rss", fixture_feed("norms.rss"))
    cfg = write_config(tmp_path, [("Norms Watch", url)], extra=extra)
    assert cli_run("--config", cfg, "run").exit_code == 0
    messages = {str(m["To"].addresses[0].addr_spec): m for m in sink.parsed()}
    assert sorted(messages) == ["ana@example.org", "ben@example.org"]
    ana = messages["ana@example.org"]
    header = ana["List-Unsubscribe"]
    assert ana["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    (link,) = re.findall(rf"<(http://127\.0\.0\.1:{port}/unsubscribe/[^>]+)>", header)
    html = ana.get_body(("html",)).get_content()
    assert f'href="{link}"' in html  # the footer's link is the same
    assert link != re.findall(r"<(http[^>]+)>", messages["ben@example.org"]["List-Unsubscribe"])[0]

    served = Served(config_module.load(cfg), port)
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(link)
        assert page.inner_text("h1") == "Unsubscribe"
        assert db_rows(tmp_path, "SELECT COUNT(*) FROM suppressions") == [(0,)]  # a visit alone changes nothing
        page.click("button[type=submit]")
        page.wait_for_load_state("load")
        assert page.inner_text("h1") == "You are unsubscribed"
        assert context.cookies() == []
    finally:
        context.close()
        served.close()
    assert db_rows(tmp_path, "SELECT email FROM suppressions") == [("ana@example.org",)]

    later = feed_server.add("/later.atom", LATER_ATOM, content_type="application/atom+xml")
    cfg.write_text(cfg.read_text() + f'\n[[feeds]]\nname = "Later News"\nurl = "{later}"\n')
    before = len(sink.messages)
    result = cli_run("--config", cfg, "run")
    assert result.exit_code == 0, result.output
    assert [r for rcpts, _ in sink.messages[before:] for r in rcpts] == ["ben@example.org"]
    assert cfg.read_text().count("ana@example.org") == 1  # config.toml is not rewritten for it


def test_serve_logs_one_line_per_request_and_stops_on_sigterm(tmp_path, feed_server, cli_run):
    cfg = make_site(tmp_path, feed_server, cli_run)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "briefings", "--config", str(cfg), "serve", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path, text=True,
                            env={"PATH": "/usr/bin:/bin", "BRIEFINGS_SECRET": SECRET})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/index.html", timeout=1).status_code == 200
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() else ""
                time.sleep(0.1)
        httpx.get(f"http://127.0.0.1:{port}/search", params={"q": "hotline"}, timeout=5)
        httpx.get(f"http://127.0.0.1:{port}/nothing.html", timeout=5)
        httpx.get(f"http://127.0.0.1:{port}/unsubscribe/{'t' * 40}", timeout=5)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    lines = [line for line in err.splitlines() if '"GET ' in line]
    assert len(lines) == 4, err
    assert re.search(r'"GET /search\?q=hotline" 200 \d+ ', lines[1])
    assert '"GET /nothing.html" 404' in lines[2]
    assert "t" * 40 not in err  # an unsubscribe token names its recipient: not logged
    assert "Traceback" not in err


def test_serve_on_a_taken_port_is_one_line(tmp_path, cli_run):
    cfg = write_config(tmp_path, corpus=None)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = cli_run("--config", cfg, "serve", "--port", str(taken.getsockname()[1]))
    assert result.exit_code == 1
    assert "cannot listen on 127.0.0.1" in result.stderr or "could not listen" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_run_without_the_secret_sends_nothing_and_says_so_in_one_line(tmp_path, feed_server, smtp_sink, cli_run,
                                                                        monkeypatch):
    monkeypatch.delenv("BRIEFINGS_SECRET", raising=False)
    sink = smtp_sink()
    extra = mail_config(sink.port, [{"email": "ana@example.org"}], email='list_id = "norms.example.org"') + \
        '[serve]\npublic_url = "https://briefings.example.org/"\n'
    url = feed_server.add("/norms.rss", fixture_feed("norms.rss"))
    cfg = write_config(tmp_path, [("Norms Watch", url)], extra=extra)
    result = cli_run("--config", cfg, "run")
    assert "BRIEFINGS_SECRET" in result.stderr and "Traceback" not in result.stderr
    assert sink.messages == []
    assert [(d["status"], d["attempts"]) for d in deliveries(tmp_path)] == [("pending", 0)]  # nothing lost, no try spent
    monkeypatch.setenv("BRIEFINGS_SECRET", SECRET)
    assert cli_run("--config", cfg, "send").exit_code == 0
    (message,) = sink.parsed()
    assert "https://briefings.example.org/unsubscribe/" in message["List-Unsubscribe"]


# -- the suppression list on the command line ----------------------------------------------


def test_recipients_list_and_resubscribe(tmp_path, feed_server, smtp_sink, cli_run, monkeypatch, backend):
    import json

    from conftest import state_store

    monkeypatch.setenv("BRIEFINGS_SECRET", SECRET)
    sink = smtp_sink()
    people = [{"email": "ana@example.org", "name": "Ana"}, {"email": "ben@example.org", "themes": ["risk-reduction"]}]
    extra = mail_config(sink.port, people) + '[serve]\npublic_url = "https://briefings.example.org/"\n'
    url = feed_server.add("/norms.rss", fixture_feed("norms.rss"))
    cfg = write_config(tmp_path, [("Norms Watch", url)], extra=extra)
    listed = cli_run("--config", cfg, "recipients", "list", "--json")
    assert [json.loads(line)["state"] for line in listed.stdout.splitlines()] == ["subscribed", "subscribed"]
    with state_store(tmp_path) as store:
        now = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)
        store.suppressions.add("Ana@Example.org", list_id="norms", via="one-click", now=now)
        store.suppressions.add("gone@example.org", list_id="norms", via="the unsubscribe page", now=now)
    text = cli_run("--config", cfg, "recipients", "list").stdout.splitlines()
    assert text[0].split()[:2] == ["ana@example.org", "unsubscribed"] and "since 2026-11-30 09:00 UTC (one-click)" in text[0]
    assert text[1].split()[:2] == ["ben@example.org", "subscribed"] and "themes: risk-reduction" in text[1]
    assert text[2].split()[:2] == ["gone@example.org", "unsubscribed"] and text[2].endswith("not in config.toml")

    assert cli_run("--config", cfg, "run").exit_code == 0
    assert sorted(sink.copies()) == ["ben@example.org"]  # ana unsubscribed: skipped
    assert {d["recipient"]: (d["status"], d["last_error"]) for d in deliveries(tmp_path)}["ana@example.org"] == \
        ("skipped", "unsubscribed")

    result = cli_run("--config", cfg, "recipients", "resubscribe", "ANA@example.org")
    assert result.exit_code == 0 and "ANA@example.org is subscribed again." in result.stderr
    again = cli_run("--config", cfg, "recipients", "resubscribe", "ana@example.org")
    assert again.exit_code == 1 and "has not unsubscribed" in again.stderr and "Traceback" not in again.stderr
    later = feed_server.add("/later.atom", LATER_ATOM, content_type="application/atom+xml")
    cfg.write_text(cfg.read_text() + f'\n[[feeds]]\nname = "Later News"\nurl = "{later}"\n')
    before = len(sink.messages)
    assert cli_run("--config", cfg, "run").exit_code == 0
    assert "ana@example.org" in [r for rcpts, _ in sink.messages[before:] for r in rcpts]  # back on the list
    assert cfg.read_text().count("ana@example.org") == 1


@pytest.mark.parametrize("serve, secret, warning", [
    ("", None, "no one-click unsubscribe"),
    ('[serve]\npublic_url = "https://briefings.example.org/"\n', None, "BRIEFINGS_SECRET is not"),
    ('[serve]\npublic_url = "https://briefings.example.org/"\n', SECRET, None),
    ('[serve]\npublic_url = "https://briefings.example.org/"\nsecret_env = "DESK_SECRET"\n', None, "DESK_SECRET is not"),
], ids=["no-url", "no-secret", "ready", "other-variable"])
def test_check_says_whether_unsubscribe_links_can_be_signed(tmp_path, cli_run, monkeypatch, serve, secret, warning):
    monkeypatch.delenv("BRIEFINGS_SECRET", raising=False)
    if secret:
        monkeypatch.setenv("BRIEFINGS_SECRET", secret)
    cfg = write_config(tmp_path, corpus=None, extra=mail_config(25, [{"email": "ana@example.org"}], email="send_empty = false") + serve)
    result = cli_run("--config", cfg, "check")
    assert result.exit_code == 0, result.output
    if warning is None:
        assert "unsubscribe" not in result.stderr
    else:
        assert warning in result.stderr
