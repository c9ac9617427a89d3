"""The search query a person types, as a safe FTS5 MATCH expression, run by the store over a real state file."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from briefings import search
from briefings.search import QueryError

DOCS = {
    1: ("Ransomware sanctions agreed", "The council agreed sanctions on ransomware groups after the OEWG met in spring."),
    2: ("OEWG annual progress report", "States adopted the report on risk-reduction and confidence-building measures."),
    3: ("Hotline test", "The OSCE tested its cyber hotline between points of contact."),
    4: ("Café diplomacy", "Ministers met over café au lait to discuss norms of responsible state behaviour."),
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(request, tmp_path_factory):
    """A real store with four entries, indexed as the store indexes what it stores: an SQLite file, and a
    PostgreSQL database."""
    from briefings.models import Entry
    from briefings.pipeline import entry_text
    from briefings.store import Store

    if request.param == "postgresql":
        cluster = request.getfixturevalue("pg_cluster")
        target = cluster.create_database(f"search_{id(request)}")
    else:
        target = tmp_path_factory.mktemp("search") / "state.sqlite3"
    opened = Store(target)
    now = datetime(2026, 11, 1, tzinfo=timezone.utc)
    opened.entries.add([Entry(key=f"doc:{i}", source_kind="feed", source_name="Desk", title=title,
                              link=f"https://example.org/{i}", summary_html=f"<p>{body}</p>")
                        for i, (title, body) in DOCS.items()], now=now, text_of=entry_text)
    yield opened
    opened.close()
    if request.param == "postgresql":
        cluster.drop_database(target)


def matching(store, text: str) -> set[int]:
    found = store.fulltext.search(search.parse(text), search.Filters(limit=100))
    return {int(store.entries.find(str(hit.id))[0].key.split(":")[1]) for hit in found}


@pytest.mark.parametrize("text, expected", [
    ("ransomware", {1}),
    ("RANSOMWARE sanctions", {1}),
    ("oewg", {1, 2}),
    ("oewg -ransomware", {2}),
    ('oewg -"sanctions on ransomware"', {2}),
    ('"points of contact"', {3}),
    ('"contact of points"', set()),  # a phrase keeps its order
    ("ransom*", {1}),
    ("confidence-building", {2}),  # a hyphenated word is the phrase of its parts
    ("risk reduction", {2}),
    ("cafe", {4}),  # diacritics folded both ways
    ("café", {4}),
    ("ＯＥＷＧ", {1, 2}),  # full-width letters are the same letters
    ('"points of contact', {3}),  # an unclosed quote runs to the end
    ("OEWG OR hotline", set()),  # OR is a word here, not an operator: no document has all three
    ("hotline AND", set()),
    ("NEAR(hotline test)", set()),  # NEAR is a word: no document has "near"
    ("title:hotline", set()),  # no column filters: "title hotline" is a phrase no text has
    ("hotline 😀", {3}),  # emoji are not words; the rest is searched
    ("(hotline", {3}),
    ("hotline)", {3}),
    ("^hotline", {3}),
    ("hot*line", set()),  # a * inside a word splits it: the phrase "hot line"
    ("-- hotline", {3}),  # a lone minus is nothing
    ("hotline\x00test", {3}),
    ('hotline "" test', {3}),  # an empty phrase is nothing
    ("hotline hotline", {3}),
])
def test_a_query_matches_what_a_person_means(store, text, expected):
    assert matching(store, text) == expected


@pytest.mark.parametrize("text, says", [
    ("", "no words"),
    ("   ", "no words"),
    ('""', "no words"),
    ("😀🎉", "no words"),
    ("*** ??? !!!", "no words"),
    ("-ransomware", "only leaves words out"),
    ('-"risk reduction" -oewg', "only leaves words out"),
    ("x" * 10_240, "10,240 characters long"),
    (" ".join(f"w{i}" for i in range(40)), "40 words and phrases"),
])
def test_a_query_with_nothing_to_search_is_one_clear_line(text, says):
    with pytest.raises(QueryError) as caught:
        search.parse(text)
    message = str(caught.value)
    assert says in message
    assert "\n" not in message


@pytest.mark.parametrize("text, expression", [
    ("ransomware", '"ransomware"'),
    ('say "hi there"', '"say" AND "hi there"'),
    ("a -b", '("a") NOT "b"'),
    ('he said "x""y"', '"he" AND "said" AND "x" AND "y"'),
    ("pre*", '"pre" *'),
    ("a a", '"a"'),  # a word typed twice is searched once
])
def test_the_match_expression_is_quoted_terms_only(text, expression):
    assert search.parse(text).match() == expression


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from('"-*()^:+ANDORNOT '), max_size=300))
def test_no_query_makes_sqlite_raise(store, text):
    try:
        query = search.parse(text)
    except QueryError as exc:
        assert "\n" not in str(exc)
        return
    hits = store.fulltext.search(query, search.Filters(limit=10))
    assert all(1 <= hit.id <= len(DOCS) for hit in hits)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["oewg", "ransomware", "sanctions", "hotline", "report", "norms"]), min_size=1, max_size=3))
def test_every_document_found_has_every_word(store, words):
    for rowid in matching(store, " ".join(words)):
        title, body = DOCS[rowid]
        assert all(w in f"{title} {body}".lower() for w in words)


@pytest.mark.parametrize("kwargs, says", [
    ({"since": "last spring"}, "is not a date"),
    ({"since": "2026-13-01"}, "is not a date"),
    ({"limit": "ten"}, "is not a whole number"),
    ({"limit": 0}, "out of range"),
    ({"limit": 10_001}, "out of range"),
    ({"theme": "nonsense"}, "no theme 'nonsense'"),
])
def test_bad_filters_are_one_clear_line(kwargs, says):
    with pytest.raises(QueryError) as caught:
        search.check_filters(**kwargs, theme_ids={"risk-reduction"})
    assert says in str(caught.value)


def test_good_filters_are_kept():
    filters = search.check_filters(theme="risk-reduction", since="2026-03-01", source=" Lawfare ", limit="5",
                                   theme_ids={"risk-reduction"})
    assert filters == search.Filters(theme="risk-reduction", since="2026-03-01", source="Lawfare", limit=5)


# -- the index in the store: built for an existing state, kept in step, searched from the command line -----


def old_state(path, titles_and_bodies) -> None:
    """A state file as the briefings before search left it: schema version 5, entries stored, no index."""
    import sqlite3

    from briefings.store.schema import MIGRATIONS

    db = sqlite3.connect(path)
    for script in MIGRATIONS[:5]:
        db.executescript(script)
    db.executemany("INSERT INTO entries (key, source_kind, source_name, title, first_seen, summary_html)"
                   " VALUES (?, 'feed', 'Old Feed', ?, '2026-01-05T00:00:00+00:00', ?)",
                   [(f"old:{i}", t, f"<p>{b}</p>") for i, (t, b) in enumerate(titles_and_bodies)])
    db.execute("PRAGMA user_version = 5")
    db.commit()
    db.close()


def test_the_migration_builds_the_index_for_an_existing_state(tmp_path):
    from briefings.store import SCHEMA_VERSION, Store

    path = tmp_path / "state.sqlite3"
    old_state(path, list(DOCS.values()))
    with Store(path) as store:
        assert store.version == SCHEMA_VERSION
        found = store.fulltext.search(search.parse('"points of contact"'))
        assert [hit.title for hit in found] == ["Hotline test"]
        assert ("points of contact", True) in found[0].snippet
        assert store.suppressions.all() == []  # and the suppression list is there, empty


def test_an_entry_deleted_leaves_the_index(tmp_path):
    from briefings.store import Store

    path = tmp_path / "state.sqlite3"
    old_state(path, list(DOCS.values()))
    with Store(path) as store:
        store.db.execute("DELETE FROM entries WHERE title = 'Hotline test'")
        assert store.fulltext.search(search.parse("hotline")) == []
        assert store.db.one("SELECT COUNT(*) FROM entries_fts")[0] == len(DOCS) - 1


def test_briefings_search_finds_what_was_collected(tmp_path, feed_server, cli_run, backend):
    import json

    from conftest import fixture_feed, write_config

    url = feed_server.add("/norms.rss", fixture_feed("norms.rss"))
    cfg = write_config(tmp_path, [("Norms Watch", url)])
    assert cli_run("--config", cfg, "collect").exit_code == 0
    result = cli_run("--config", cfg, "search", "hotline", "--json")
    assert result.exit_code == 0, result.output
    (hit,) = json.loads(result.stdout)["results"]
    assert hit["title"] == "OSCE participating States test their cyber hotline"
    assert hit["source"] == "Norms Watch" and hit["link"].startswith("http") and hit["briefing"] is None
    assert "[hotline]" in hit["snippet"].lower()
    assert cli_run("--config", cfg, "run").exit_code == 0
    after = json.loads(cli_run("--config", cfg, "search", "hotline", "--json").stdout)["results"][0]
    assert after["briefing"]["slug"].startswith("2026-") and after["themes"]  # listed, and classified
    text = cli_run("--config", cfg, "search", "working", "group", "-ransomware", "--source", "norms watch")
    assert text.exit_code == 0, text.output
    assert text.stdout.startswith("1. UN Open-Ended Working Group agrees annual progress report\n")
    corpus = json.loads(cli_run("--config", cfg, "search", "cybersecurity norms", "--json", "--limit", "50").stdout)
    assert {"feed", "corpus"} >= {h["kind"] for h in corpus["results"]} and \
        any(h["kind"] == "corpus" for h in corpus["results"])  # the reading list is searched too


@pytest.mark.parametrize("args, says", [
    (["😀"], "nothing to search for"),
    (["-ransomware"], "only leaves words out"),
    (["x" * 10_240], "10,240 characters long"),
    (["hotline", "--since", "yesterday"], "is not a date"),
    (["hotline", "--theme", "nope"], "no theme 'nope'"),
    (["hotline", "--limit", "0"], "out of range"),
])
def test_briefings_search_answers_odd_input_in_one_line(tmp_path, cli_run, args, says):
    from conftest import write_config

    cfg = write_config(tmp_path, corpus=None)
    result = cli_run("--config", cfg, "search", *args)
    assert result.exit_code == 1
    assert says in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2 and "Traceback" not in result.stderr  # the line, and a hint


def test_a_postgresql_state_from_before_search_gets_its_index_and_suppression_list(pg_url):
    import psycopg

    from briefings.store import Store
    from briefings.store.postgres import MIGRATIONS
    from briefings.store.schema import _statements

    with psycopg.connect(pg_url, autocommit=True) as conn:
        for script in MIGRATIONS[:2]:
            for statement in _statements(script):
                conn.execute(statement)
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (2)")
        for i, (title, body) in DOCS.items():
            conn.execute("INSERT INTO entries (key, source_kind, source_name, title, first_seen, summary_html)"
                         " VALUES (%s, 'feed', 'Old Feed', %s, '2026-01-05T00:00:00+00:00', %s)",
                         (f"old:{i}", title, f"<p>{body}</p>"))
    with Store(pg_url) as store:
        assert store.version == len(MIGRATIONS)
        found = store.fulltext.search(search.parse('"points of contact"'))
        assert [hit.title for hit in found] == ["Hotline test"]
        assert ("points of contact", True) in found[0].snippet or ("points", True) in found[0].snippet
        store.suppressions.add("Ana@Example.org", list_id="norms", via="one-click",
                               now=datetime(2026, 11, 30, tzinfo=timezone.utc))
        assert store.suppressions.contains("ana@example.org")
        assert store.suppressions.remove("ANA@example.org") and not store.suppressions.contains("ana@example.org")
