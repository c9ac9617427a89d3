"""Proxies from the environment, and redirects that would lead from the internet into a private network.

A real forwarding proxy on 127.0.0.1 (tests/proxyserver.py) stands for a company's:
feeds on hosts this machine cannot resolve (feeds.invalid) are fetched through it.
The proxy reaches every host at the test's feed server on 127.0.0.1, so nothing here
leaves this machine, not even a redirect to 169.254.169.254 that a broken guard
would follow. Which addresses a name has is told by the resolver hook
(briefings.collect.feeds.resolve), which the tests replace.
"""

from __future__ import annotations

import json
import sqlite3
import ssl

import pytest

from briefings.collect import feeds as feeds_module
from briefings.collect.feeds import fetch_all, probe
from briefings.collect.parse import discover_feeds
from briefings.config import FeedConfig, FetchSettings
from conftest import FeedServer, fixture_feed, free_port, write_config
from proxyserver import HttpProxy, SocksProxy

PROXY_VARS = ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
              "no_proxy", "REQUEST_METHOD"]
NORMS_TITLE = "UN Open-Ended Working Group agrees annual progress report"
SETTINGS = FetchSettings(timeout=5, workers=1)

# What the resolver hook answers: news.example and mirror.example are on the internet,
# intranet.example inside, and mixed.example has one address of each.
ADDRESSES = {
    "news.example": ["93.184.216.34"],
    "mirror.example": ["93.184.216.35"],
    "intranet.example": ["10.1.2.3"],
    "mixed.example": ["93.184.216.36", "127.0.0.1"],
}


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch):
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def resolver(monkeypatch):
    monkeypatch.setattr(feeds_module, "resolve", lambda host: list(ADDRESSES.get(host, [])))


@pytest.fixture
def http_proxy(feed_server):
    proxy = HttpProxy(feed_server.httpd.server_address[1])
    yield proxy
    proxy.close()


def collect(cli_run, tmp_path, feeds: list[tuple[str, str]]) -> dict[str, dict]:
    cfg = write_config(tmp_path, feeds, corpus=None, fetch="timeout = 5\nworkers = 1")
    result = cli_run("--config", cfg, "collect", "--json")
    assert result.exit_code == 0, result.output
    return {f["name"]: f for f in json.loads(result.stdout)["feeds"]}


def stored_titles(tmp_path, name: str) -> set[str]:
    db = sqlite3.connect(tmp_path / "state" / "briefings.sqlite3")
    try:
        return {row[0] for row in db.execute("SELECT title FROM entries WHERE source_name = ?", (name,))}
    finally:
        db.close()


def stored_url(tmp_path, name: str) -> str:
    db = sqlite3.connect(tmp_path / "state" / "briefings.sqlite3")
    try:
        return db.execute("SELECT url FROM feeds WHERE name = ?", (name,)).fetchone()[0]
    finally:
        db.close()


# --- proxies ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("variable, kind, asked", [
    ("HTTP_PROXY", HttpProxy, "GET http://feeds.invalid/norms.rss"),
    ("http_proxy", HttpProxy, "GET http://feeds.invalid/norms.rss"),
    ("ALL_PROXY", HttpProxy, "GET http://feeds.invalid/norms.rss"),
    ("all_proxy", HttpProxy, "GET http://feeds.invalid/norms.rss"),
    ("ALL_PROXY", SocksProxy, "CONNECT feeds.invalid:80"),
])
def test_a_feed_on_a_host_only_the_proxy_reaches(tmp_path, feed_server, cli_run, monkeypatch, variable, kind, asked):
    feed_server.add("/norms.rss", fixture_feed("norms.rss"))
    proxy = kind(feed_server.httpd.server_address[1])
    try:
        monkeypatch.setenv(variable, proxy.url)
        report = collect(cli_run, tmp_path, [("norms", "http://feeds.invalid/norms.rss")])
    finally:
        proxy.close()
    assert report["norms"]["status"] == "ok", report
    assert NORMS_TITLE in stored_titles(tmp_path, "norms")
    assert proxy.log == [asked]


def test_an_https_feed_through_the_proxy_is_tunnelled_and_verified(tmp_path, http_proxy, cli_run, monkeypatch):
    import trustme

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("feeds.invalid").configure_cert(context)
    secure = FeedServer(tls=context)
    try:
        secure.add("/norms.rss", fixture_feed("norms.rss"))
        http_proxy.upstream_port = secure.httpd.server_address[1]
        ca_file = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        monkeypatch.delenv("SSL_CERT_DIR", raising=False)
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
        monkeypatch.setenv("HTTPS_PROXY", http_proxy.url)
        report = collect(cli_run, tmp_path, [("norms", "https://feeds.invalid/norms.rss")])
    finally:
        secure.close()
    assert report["norms"]["status"] == "ok", report
    assert http_proxy.log == ["CONNECT feeds.invalid:443"]
    assert [r.path for r in secure.log] == ["/norms.rss"]


@pytest.mark.parametrize("variable, value", [("NO_PROXY", "127.0.0.1"), ("no_proxy", "127.0.0.1"),
                                             ("NO_PROXY", "intranet.example,127.0.0.1"), ("NO_PROXY", "*")])
def test_no_proxy_hosts_are_fetched_directly(tmp_path, feed_server, http_proxy, cli_run, monkeypatch, variable, value):
    direct = feed_server.add("/norms.rss", fixture_feed("norms.rss"))
    monkeypatch.setenv("HTTP_PROXY", http_proxy.url)
    monkeypatch.setenv(variable, value)
    report = collect(cli_run, tmp_path, [("direct", direct), ("outside", "http://feeds.invalid/norms.rss")])
    assert report["direct"]["status"] == "ok", report
    if value == "*":  # no proxy for anyone: the outside host does not resolve here
        assert http_proxy.log == []
        assert "cannot resolve host feeds.invalid" in report["outside"]["error"]
    else:
        assert report["outside"]["status"] == "ok", report
        assert http_proxy.log == ["GET http://feeds.invalid/norms.rss"]


def test_without_no_proxy_a_local_feed_goes_through_the_proxy_too(tmp_path, feed_server, http_proxy, cli_run,
                                                                  monkeypatch):
    direct = feed_server.add("/norms.rss", fixture_feed("norms.rss"))
    monkeypatch.setenv("HTTP_PROXY", http_proxy.url)
    report = collect(cli_run, tmp_path, [("direct", direct)])
    assert report["direct"]["status"] == "ok", report
    assert http_proxy.log == [f"GET {direct}"]


@pytest.mark.parametrize("variable, scheme", [("HTTP_PROXY", "http"), ("HTTPS_PROXY", "https"),
                                              ("ALL_PROXY", "http"), ("ALL_PROXY", "https")])
def test_a_dead_proxy_is_one_line_naming_it(tmp_path, cli_run, monkeypatch, variable, scheme):
    port = free_port()
    monkeypatch.setenv(variable, f"http://someone:s3cret@127.0.0.1:{port}")
    report = collect(cli_run, tmp_path, [("norms", f"{scheme}://feeds.invalid/norms.rss")])
    error = report["norms"]["error"]
    assert report["norms"]["status"] == "failed"
    assert error == (f"cannot reach the proxy http://127.0.0.1:{port} (connection refused): check {variable},"
                     " or list this host in NO_PROXY"), error
    assert "s3cret" not in error and "\n" not in error


def test_a_proxy_url_of_an_unknown_kind_is_one_line(tmp_path, feed_server, cli_run, monkeypatch):
    direct = feed_server.add("/norms.rss", fixture_feed("norms.rss"))
    monkeypatch.setenv("ALL_PROXY", "ftp://127.0.0.1:2121")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    report = collect(cli_run, tmp_path, [("norms", "http://feeds.invalid/norms.rss"), ("direct", direct)])
    assert report["norms"]["error"] == ("the proxy ftp://127.0.0.1:2121 in ALL_PROXY is not one briefings can use:"
                                        " give an http://, https:// or socks5:// URL")
    assert report["direct"]["status"] == "ok"  # NO_PROXY hosts do not need it


@pytest.mark.parametrize("scheme, expected", [
    ("https", "the proxy {proxy} could not connect to feeds.invalid (502 Bad Gateway): check the URL, or ask whoever"
              " runs the proxy"),
    ("http", "HTTP 502 Bad Gateway (through the proxy {proxy}): the server is failing; it will be retried"),
])
def test_a_proxy_that_cannot_reach_the_feed_is_named(tmp_path, cli_run, monkeypatch, scheme, expected):
    proxy = HttpProxy(upstream_port=None)  # reaches nothing but 127.0.0.1
    try:
        monkeypatch.setenv("ALL_PROXY", proxy.url)
        report = collect(cli_run, tmp_path, [("norms", f"{scheme}://feeds.invalid/norms.rss")])
    finally:
        proxy.close()
    assert report["norms"]["error"] == expected.format(proxy=proxy.url)


# --- redirects into the private network ------------------------------------------------------------

REFUSED = [
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254, link-local"),
    ("http://127.0.0.1:{port}/inside.rss", "127.0.0.1, loopback"),
    ("http://10.0.0.5/inside.rss", "10.0.0.5, private"),
    ("http://192.168.1.1/inside.rss", "192.168.1.1, private"),
    ("http://0.0.0.0/inside.rss", "0.0.0.0, reserved"),
    ("http://[::1]:{port}/inside.rss", "::1, loopback"),
    ("http://[::ffff:169.254.169.254]/inside.rss", "::ffff:169.254.169.254, link-local"),
    ("http://intranet.example/inside.rss", "intranet.example at 10.1.2.3, private"),
    ("http://mixed.example/inside.rss", "mixed.example at 127.0.0.1, loopback"),
]


def serve_redirect(feed_server, code: int, target: str) -> None:
    feed_server.add("/feed.rss", b"", status=code, headers={"Location": target}, conditional=False)
    for path in ("/inside.rss", "/latest/meta-data/", "/moved.rss"):
        feed_server.add(path, fixture_feed("norms.rss"))


@pytest.mark.parametrize("code, target, named", [(301, *case) for case in REFUSED]
                         + [(code, *REFUSED[0]) for code in (302, 307, 308)])
def test_a_public_feed_may_not_redirect_into_the_private_network(tmp_path, feed_server, http_proxy, resolver,
                                                                 cli_run, monkeypatch, code, target, named):
    target = target.format(port=feed_server.httpd.server_address[1])
    serve_redirect(feed_server, code, target)
    monkeypatch.setenv("HTTP_PROXY", http_proxy.url)
    report = collect(cli_run, tmp_path, [("news", "http://news.example/feed.rss")])
    assert report["news"]["status"] == "failed"
    assert report["news"]["error"] == (f"redirect from a public address to a private one ({named}) refused:"
                                       " a feed on the internet may not lead into this network; check the URL")
    assert report["news"]["moved_to"] is None
    assert stored_url(tmp_path, "news") == "http://news.example/feed.rss"  # a 301 there is never saved
    assert http_proxy.log == ["GET http://news.example/feed.rss"]  # and never followed


@pytest.mark.parametrize("origin, target", [
    ("http://news.example/feed.rss", "http://mirror.example/moved.rss"),  # public to public
    ("http://intranet.example/feed.rss", "http://10.0.0.5/moved.rss"),  # an intranet feed, inside
    ("http://intranet.example/feed.rss", "http://169.254.169.254/moved.rss"),
    ("http://10.1.2.3/feed.rss", "http://intranet.example/moved.rss"),
    ("http://feeds.invalid/feed.rss", "http://news.example/moved.rss"),  # unknown here, public there
])
def test_other_redirects_are_followed(tmp_path, feed_server, http_proxy, resolver, cli_run, monkeypatch,
                                      origin, target):
    serve_redirect(feed_server, 301, target)
    monkeypatch.setenv("HTTP_PROXY", http_proxy.url)
    report = collect(cli_run, tmp_path, [("feed", origin)])
    assert report["feed"]["status"] == "ok", report
    assert report["feed"]["moved_to"] == target
    assert http_proxy.log == [f"GET {origin}", f"GET {target}"]


def test_a_loopback_feed_redirects_within_without_a_proxy(feed_server, resolver):
    feed_server.add("/moved.rss", fixture_feed("norms.rss"))
    old = feed_server.add("/feed.rss", b"", status=301, headers={"Location": "/moved.rss"}, conditional=False)
    [[result]] = list(fetch_all([FeedConfig(name="local", url=old)], SETTINGS))
    assert result.status == "ok" and result.new_url == feed_server.url("/moved.rss")


def page_naming(feed_url: str) -> str:
    return (f'<html><head><link rel="alternate" type="application/rss+xml" href="{feed_url}"></head>'
            "<body>Posts</body></html>")


@pytest.mark.parametrize("feed_url, named", [
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254, link-local"),
    ("http://intranet.example/inside.rss", "intranet.example at 10.1.2.3, private"),
])
def test_a_public_page_may_not_name_a_private_feed(feed_server, http_proxy, resolver, monkeypatch, feed_url, named):
    feed_server.add("/blog/", page_naming(feed_url), content_type="text/html")
    feed_server.add("/inside.rss", fixture_feed("norms.rss"))
    feed_server.add("/latest/meta-data/", fixture_feed("norms.rss"))
    monkeypatch.setenv("HTTP_PROXY", http_proxy.url)
    result = probe("http://news.example/blog/", SETTINGS)
    assert result.status == "failed"
    assert result.error == (f"the page names its feed at {feed_url}, a private address ({named}): refused, a page"
                            " on the internet may not lead into this network")
    assert http_proxy.log == ["GET http://news.example/blog/"]


@pytest.mark.parametrize("page", ["http://news.example/blog/", "http://intranet.example/blog/"])
def test_a_page_may_name_a_feed_beside_it(feed_server, http_proxy, resolver, monkeypatch, page):
    feed_url = page.replace("/blog/", "/moved.rss")
    feed_server.add("/blog/", page_naming(feed_url), content_type="text/html")
    feed_server.add("/moved.rss", fixture_feed("norms.rss"))
    monkeypatch.setenv("HTTP_PROXY", http_proxy.url)
    result = probe(page, SETTINGS)
    assert result.status == "ok" and result.url == feed_url and result.discovered_from == page


@pytest.mark.parametrize("href", ["javascript:alert(1)", "file:///etc/passwd", "data:application/rss+xml,<rss/>",
                                  "ftp://example.org/feed.rss", "JavaScript:alert(1)", " javascript:alert(1)"])
def test_autodiscovery_suggests_only_http_urls(href):
    page = (f'<html><head><link rel="alternate" type="application/rss+xml" href="{href}">'
            '<link rel="alternate" type="application/atom+xml" href="/atom.xml"></head></html>').encode()
    assert discover_feeds(page, "https://example.org/blog/") == ["https://example.org/atom.xml"]


def test_a_move_into_the_private_network_saved_before_is_not_followed(tmp_path, feed_server, http_proxy, resolver,
                                                                      cli_run, monkeypatch):
    serve_redirect(feed_server, 301, "http://10.0.0.5/inside.rss")
    monkeypatch.setenv("HTTP_PROXY", http_proxy.url)
    collect(cli_run, tmp_path, [("news", "http://news.example/feed.rss")])
    db = sqlite3.connect(tmp_path / "state" / "briefings.sqlite3")
    with db:  # as a version that followed the 301 saved it
        db.execute("UPDATE feeds SET url = ?, moved_to = ? WHERE name = 'news'", ("http://10.0.0.5/inside.rss",) * 2)
    db.close()
    http_proxy.log.clear()
    report = collect(cli_run, tmp_path, [("news", "http://news.example/feed.rss")])
    assert report["news"]["status"] == "failed"
    assert "redirect from a public address to a private one (10.0.0.5, private) refused" in report["news"]["error"]
    assert http_proxy.log == ["GET http://news.example/feed.rss"]
