"""Bad input at the edges: feed URLs, numeric settings, and an OPML import of many outlines."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from briefings import config as config_module
from briefings.errors import ConfigError
from briefings.feedlist import FeedEditor
from conftest import ROOT, write_config

# (URL, what the error must say is wrong with it)
BAD_URLS = [
    ("http:// evil", "spaces"),
    ("http:///etc/passwd", "no host"),
    ("https://", "no host"),
    ("http://user@/feed", "no host"),
    ("http://:8080/feed", "no host"),
    ("http://exa mple.org/feed", "spaces"),
    ("http://example.org/a feed.xml", "spaces"),
    ("http://example.org/\tfeed", "spaces"),
    ("ftp://example.org/feed", "http or https"),
    ("file:///etc/passwd", "http or https"),
    ("example.org/feed.xml", "http or https"),
    ("javascript:alert(1)", "http or https"),
    ("https://example.org:99999/feed", "port"),
    ("https://example.org:http/feed", "port"),
    ("http://ex!ample.org/feed", "not a valid host"),
    ("http://-example.org/feed", "not a valid host"),
    ("http://example..org/feed", "not a valid host"),
    ("http://[::1/feed", "not a valid"),
    # IDNA 2003 (Python's codec) encodes a snowman; IDNA 2008, which the fetcher uses, refuses it
    ("http://\u2603.example/feed", "not a valid host"),
]
BAD_URL_IDS = [u.replace(" ", "_").replace("\t", "TAB") for u, _ in BAD_URLS]

GOOD_URLS = [
    "https://example.org/feed.xml",
    "http://127.0.0.1:8080/rss",
    "http://[::1]:8080/rss",
    "https://münchen.example/feed",
    "https://例え.テスト/feed",
    "https://xn--mnchen-3ya.example/feed?format=rss&x=%20",
    "https://user:pw@feeds.example.org/f",
]


def _quoted(url: str) -> str:
    return url.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t")


def _line_of(path: Path, needle: str) -> int:
    return next(n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in line)


def shipped_copy(folder: Path) -> Path:
    cfg = folder / "config.toml"
    cfg.write_text((ROOT / "config.toml").read_text(encoding="utf-8"), encoding="utf-8")
    return cfg


# --- feed URLs --------------------------------------------------------------


@pytest.mark.parametrize("url,problem", BAD_URLS, ids=BAD_URL_IDS)
def test_config_load_rejects_a_bad_feed_url_with_file_line_and_key(tmp_path, cli_run, url, problem):
    cfg = write_config(tmp_path, [("good", "https://example.org/feed"), ("bad", _quoted(url))], corpus=None)
    line = _line_of(cfg, 'name = "bad"') + 1
    result = cli_run("--config", cfg, "check")
    assert result.exit_code == 2, result.output
    first = result.stderr.splitlines()[0]
    assert f"{cfg.resolve()}:{line}: [feeds] url: " in first
    assert problem in first and "Traceback" not in result.output


@pytest.mark.parametrize("url", GOOD_URLS)
def test_config_load_accepts_good_feed_urls(tmp_path, url):
    cfg = write_config(tmp_path, [("one", url)], corpus=None)
    assert config_module.load(cfg).feeds[0].url == url


SPACED_URLS = [" https://example.org/feed", "https://example.org/feed  ", "\thttps://example.org/feed\n"]


@pytest.mark.parametrize("url", SPACED_URLS, ids=["leading", "trailing", "tab-and-newline"])
def test_config_load_trims_spaces_around_a_feed_url(tmp_path, url):
    cfg = write_config(tmp_path, [("one", _quoted(url).replace("\n", "\\n"))], corpus=None)
    assert config_module.load(cfg).feeds[0].url == "https://example.org/feed"


@pytest.mark.parametrize("check", [True, False], ids=["checked", "no-check"])
@pytest.mark.parametrize("spaces", [(" ", ""), ("", "  "), ("\t", " \n")], ids=["leading", "trailing", "both"])
def test_feeds_add_trims_spaces_around_the_url(tmp_path, cli_run, feed_server, spaces, check):
    from conftest import fixture_feed

    url = feed_server.add("/norms.rss", fixture_feed("norms.rss"))
    cfg = write_config(tmp_path, [], corpus=None)
    before, after = spaces
    result = cli_run("--config", cfg, "feeds", "add", f"{before}{url}{after}", "--name", "Norms",
                     *([] if check else ["--no-check"]))
    assert result.exit_code == 0, result.output
    assert [(f.name, f.url) for f in config_module.load(cfg).feeds] == [("Norms", url)]
    assert f'url = "{url}"' in cfg.read_text(encoding="utf-8")


@pytest.mark.parametrize("check", [True, False], ids=["checked", "no-check"])
@pytest.mark.parametrize("url,problem", BAD_URLS, ids=BAD_URL_IDS)
def test_feeds_add_refuses_a_bad_url_and_leaves_the_file_alone(tmp_path, cli_run, url, problem, check):
    cfg = shipped_copy(tmp_path)
    before = cfg.read_bytes()
    result = cli_run("--config", cfg, "feeds", "add", url, *([] if check else ["--no-check"]))
    assert result.exit_code == 2, result.output
    assert problem in result.stderr and "Traceback" not in result.output
    assert cfg.read_bytes() == before
    assert len(config_module.load(cfg).feeds) == 11


@pytest.mark.parametrize("url,problem", BAD_URLS, ids=BAD_URL_IDS)
def test_feeds_import_skips_a_bad_outline_with_a_line_naming_it(tmp_path, cli_run, url, problem):
    cfg = write_config(tmp_path, [], corpus=None)
    opml = tmp_path / "subs.opml"
    attr = url.replace("&", "&amp;").replace('"', "&quot;").replace("\t", "&#9;")
    opml.write_text(
        '<?xml version="1.0"?><opml version="2.0"><head/><body>\n'
        '<outline type="rss" text="Before" xmlUrl="https://before.example.org/feed"/>\n'
        f'<outline type="rss" text="Broken one" xmlUrl="{attr}"/>\n'
        '<outline type="rss" text="After" xmlUrl="https://after.example.org/feed"/>\n'
        "</body></opml>\n",
        encoding="utf-8",
    )
    result = cli_run("--config", cfg, "feeds", "import", opml)
    assert result.exit_code == 0, result.output
    skipped = [line for line in result.stderr.splitlines() if "Broken one" in line]
    assert len(skipped) == 1 and problem in skipped[0]
    assert "Imported 2 feeds" in result.stdout
    assert [(f.name, f.url) for f in config_module.load(cfg).feeds] == [
        ("Before", "https://before.example.org/feed"),
        ("After", "https://after.example.org/feed"),
    ]


@pytest.mark.parametrize(
    "name,url,problem",
    [
        ("The Record", "https://new.example.org/feed", "duplicate feed name 'The Record'"),
        ("Fine name", "http:// evil", "[feeds] url"),
        ("Fine name", "http:///etc/passwd", "[feeds] url"),
    ],
)
def test_the_editor_refuses_to_save_a_config_that_would_not_load(tmp_path, name, url, problem):
    cfg = shipped_copy(tmp_path)
    before = cfg.read_bytes()
    editor = FeedEditor(cfg)
    editor.add(name, url)
    with pytest.raises(ConfigError) as caught:
        editor.save()
    assert problem in str(caught.value) and "not saved" in str(caught.value)
    assert cfg.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]  # no temporary file left


def test_feeds_remove_repairs_a_config_a_bad_url_broke(tmp_path, cli_run):
    cfg = write_config(tmp_path, [("good", "https://example.org/feed"), ("bad", "http:// evil")], corpus=None)
    assert cli_run("--config", cfg, "feeds", "list").exit_code == 2
    result = cli_run("--config", cfg, "feeds", "remove", "bad")
    assert result.exit_code == 0, result.output
    assert [f.name for f in config_module.load(cfg).feeds] == ["good"]


def test_feeds_remove_on_a_broken_config_still_refuses_what_stays_broken(tmp_path, cli_run):
    cfg = write_config(tmp_path, [("good", "https://example.org/feed"), ("bad", "http:// evil")], corpus=None)
    before = cfg.read_bytes()
    result = cli_run("--config", cfg, "feeds", "remove", "good")
    assert result.exit_code == 2
    assert "[feeds] url" in result.stderr and "not saved" in result.stderr
    assert cfg.read_bytes() == before


# --- folders ----------------------------------------------------------------

FOLDER_CASES = {"missing": None, "a file": "not a folder\n"}


def _make(path: Path, content: str | None) -> None:
    if content is not None:
        path.write_text(content, encoding="utf-8")


@pytest.mark.parametrize("command", ["check", "run"])
@pytest.mark.parametrize("case", list(FOLDER_CASES))
def test_a_reading_list_folder_missing_or_a_file_is_one_warning_line(tmp_path, cli_run, case, command):
    cfg = write_config(tmp_path, [], corpus="reading", copy_corpus=False)
    _make(tmp_path / "reading", FOLDER_CASES[case])
    result = cli_run("--config", cfg, command)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if "reading" in line and "[corpus] path" in line]
    assert len(lines) == 1, result.stderr
    assert str((tmp_path / "reading").resolve()) in lines[0]
    assert ("is a file, not a folder" if case == "a file" else "not found") in lines[0]
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", ["check", "run", "collect"])
@pytest.mark.parametrize("case", list(FOLDER_CASES))
def test_a_templates_folder_missing_or_a_file_is_refused_with_file_line_and_key(tmp_path, cli_run, case, command):
    cfg = write_config(tmp_path, [], corpus=None, extra='[render]\ntemplates = "mine"\n')
    _make(tmp_path / "mine", FOLDER_CASES[case])
    line = _line_of(cfg, 'templates = "mine"')
    result = cli_run("--config", cfg, command)
    assert result.exit_code == 2, result.output
    first, *rest = result.stderr.splitlines()
    assert f"{cfg.resolve()}:{line}: [render] templates: {(tmp_path / 'mine').resolve()}: " in first, first
    assert ("is a file, not a folder" if case == "a file" else "no such folder") in first
    assert not rest and not (tmp_path / "archive").exists()


def test_a_templates_folder_that_exists_is_accepted(tmp_path):
    cfg = write_config(tmp_path, [], corpus=None, extra='[render]\ntemplates = "mine"\n')
    (tmp_path / "mine").mkdir()
    assert config_module.load(cfg).render.templates == (tmp_path / "mine").resolve()


# --- unsubscribe -------------------------------------------------------------


@pytest.mark.parametrize("value", ["leave@{email}.example.org", "leave@lists.{email}", "{email}@{email}.example.org"])
def test_an_unsubscribe_mailto_with_email_after_the_at_is_refused_with_file_line_and_key(tmp_path, cli_run, value):
    cfg = write_config(tmp_path, [], corpus=None, extra=f'[email]\nunsubscribe_mailto = "{value}"\n')
    line = _line_of(cfg, "unsubscribe_mailto")
    result = cli_run("--config", cfg, "check")
    assert result.exit_code == 2, result.output
    first = result.stderr.splitlines()[0]
    assert f"{cfg.resolve()}:{line}: [email] unsubscribe_mailto: " in first and "only before the @" in first, first


# --- numbers ----------------------------------------------------------------

HUGE_INT, HUGE_FLOAT = "1000000000000000000000", "1e300"

# (table, key, TOML values it must refuse, the words the error must use)
BAD_NUMBERS = [
    ("fetch", "concurrency", ["0", "-1", HUGE_INT]),
    ("fetch", "per_host", ["0", "-1", HUGE_INT]),
    ("fetch", "timeout", ["0", "-1", "nan", "inf", "-inf", HUGE_FLOAT, "0.0"]),
    ("fetch", "max_bytes", ["0", "-1", HUGE_INT]),
    ("fetch", "max_redirects", ["-1", HUGE_INT]),
    ("fetch", "backoff_max_hours", ["-1", "nan", "inf", "-inf", HUGE_FLOAT]),
    ("fetch", "workers", ["-1", HUGE_INT]),
    ("briefing", "max_per_theme", ["-1", HUGE_INT]),
    ("briefing", "excerpt_sentences", ["-1", HUGE_INT]),
    ("briefing", "reading_list", ["-1", HUGE_INT]),
    ("classify", "threshold", ["-1", "nan", "inf", "-inf"]),
    ("classify", "secondary_share", ["-1", "1.5", "nan", "inf", "-inf"]),
    ("classify", "similarity_weight", ["-1", "nan", "inf", "-inf"]),
    ("smtp", "port", ["-1", "65536", HUGE_INT]),
    ("smtp", "timeout", ["0", "-1", "nan", "inf", "-inf", HUGE_FLOAT]),
    ("smtp", "max_attempts", ["0", "-1", HUGE_INT]),
    ("smtp", "retry_minutes", ["-1", "nan", "inf", "-inf", HUGE_FLOAT]),
    ("schedule", "retry_seconds", ["0", "-1", "nan", "inf", "-inf", HUGE_FLOAT]),
    ("schedule", "lock_wait", ["-1", "nan", "inf", "-inf", HUGE_FLOAT]),
]
NUMBER_CASES = [(t, k, v) for t, k, values in BAD_NUMBERS for v in values]


def _numeric_config(tmp_path: Path, table: str, key: str, value: str) -> Path:
    if table == "fetch":
        return write_config(tmp_path, [], corpus=None, fetch=f"{key} = {value}")
    return write_config(tmp_path, [], corpus=None, extra=f"[{table}]\n{key} = {value}\n")


@pytest.mark.parametrize("table,key,value", NUMBER_CASES, ids=[f"{t}.{k}={v}" for t, k, v in NUMBER_CASES])
def test_a_bad_number_is_refused_with_file_line_key_and_range(tmp_path, cli_run, table, key, value):
    cfg = _numeric_config(tmp_path, table, key, value)
    line = _line_of(cfg, f"{key} = {value}")
    result = cli_run("--config", cfg, "check")
    assert result.exit_code == 2, result.output
    first = result.stderr.splitlines()[0]
    assert f"{cfg.resolve()}:{line}: [{table}] {key}: " in first, first
    if value in ("nan", "inf", "-inf"):
        assert "finite number" in first or "whole number" in first, first
    else:
        assert "must be" in first and "got" in first, first


# (table, key, the edge values that are fine)
GOOD_NUMBERS = [
    ("fetch", "concurrency", ["1", "64"]),
    ("fetch", "timeout", ["0.5", "3600"]),
    ("fetch", "max_bytes", ["1", "1000000000"]),
    ("fetch", "max_redirects", ["0"]),
    ("fetch", "workers", ["0", "1"]),
    ("briefing", "max_per_theme", ["0"]),
    ("classify", "threshold", ["0", "1e6"]),
    ("classify", "secondary_share", ["0", "1"]),
    ("smtp", "port", ["0", "1", "65535"]),
    ("smtp", "retry_minutes", ["0"]),
    ("schedule", "lock_wait", ["0"]),
]
GOOD_CASES = [(t, k, v) for t, k, values in GOOD_NUMBERS for v in values]


@pytest.mark.parametrize("table,key,value", GOOD_CASES, ids=[f"{t}.{k}={v}" for t, k, v in GOOD_CASES])
def test_an_edge_number_inside_its_range_is_accepted(tmp_path, table, key, value):
    cfg = _numeric_config(tmp_path, table, key, value)
    assert getattr(getattr(config_module.load(cfg), table), key) == float(value)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1"])
def test_a_numeric_setting_without_a_declared_range_is_still_checked(value):
    @dataclass(frozen=True)
    class Caps:
        max_entries: int = config_module._s(100, "No range declared.")
        share: float = config_module._s(0.5, "No range declared.")

    def fail(message, table, key=None, index=None, hint=None):
        raise ConfigError(f"[{table}] {key}: {message}")

    with pytest.raises(ConfigError, match=r"\[caps\] share: must be"):
        config_module._build(Caps, {"max_entries": 5, "share": float(value)}, "caps", Path("."), fail)
    assert config_module._build(Caps, {"max_entries": 5, "share": 0.0}, "caps", Path("."), fail).share == 0.0


def test_every_default_lies_in_its_range_and_the_reference_shows_the_range():
    for table, cls in config_module.SECTIONS.items():
        for f in config_module.dataclasses.fields(cls):
            span = f.metadata.get("range")
            if span is not None:
                assert span.allows(f.default), f"[{table}] {f.name}: default {f.default} outside {span}"
    markdown = config_module.settings_markdown()
    row = next(line for line in markdown.splitlines() if line.startswith("| `[fetch] timeout`"))
    assert "Range: more than 0 and at most 3600." in row


# --- OPML import at scale ---------------------------------------------------


def test_importing_twenty_thousand_outlines_adds_every_valid_one(tmp_path, cli_run):
    cfg = write_config(tmp_path, [("Feed 3", "https://already.example.org/feed")], corpus=None)
    rows = []
    for i in range(20_000):
        url = "http:///broken" if i == 7 else f"https://h{i % 50}.example.org/feed/{i}"
        rows.append(f'<outline type="rss" text="Feed {i % 10_000}" xmlUrl="{url}"/>')
    opml = tmp_path / "big.opml"
    opml.write_text('<opml version="2.0"><head/><body>\n' + "\n".join(rows) + "\n</body></opml>\n", encoding="utf-8")
    result = cli_run("--config", cfg, "feeds", "import", opml)
    assert result.exit_code == 0, result.output
    assert "Imported 19999 feeds" in result.stdout
    feeds = config_module.load(cfg).feeds
    assert len(feeds) == 20_000
    names = [f.name for f in feeds]
    assert len(set(names)) == 20_000
    assert names[:3] == ["Feed 3", "Feed 0", "Feed 1"]
    assert names[4] == "Feed 3 (2)"  # taken by the feed already there
    assert names[10_000] == "Feed 0 (2)" and names[10_003] == "Feed 3 (3)"
    assert feeds[-1].url == "https://h49.example.org/feed/19999"
    assert "https://h7.example.org/feed/7" not in {f.url for f in feeds}
