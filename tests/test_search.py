"""The search query a person types, as a safe FTS5 MATCH expression, run against a real FTS5 table."""

from __future__ import annotations

import sqlite3

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


@pytest.fixture(scope="module")
def db():
    """A real FTS5 table with the schema the store uses, four documents in it."""
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE TABLE entries (id INTEGER PRIMARY KEY)")
    for statement in search.INDEX_STATEMENTS:
        connection.execute(statement)
    connection.executemany("INSERT INTO entries_fts (rowid, title, body, source) VALUES (?, ?, ?, 'Desk')",
                           [(i, t, b) for i, (t, b) in DOCS.items()])
    yield connection
    connection.close()


def matching(db, text: str) -> set[int]:
    expression = search.parse(text).match()
    return {row[0] for row in db.execute("SELECT rowid FROM entries_fts WHERE entries_fts MATCH ?", (expression,))}


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
def test_a_query_matches_what_a_person_means(db, text, expected):
    assert matching(db, text) == expected


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
def test_no_query_makes_sqlite_raise(db, text):
    try:
        expression = search.parse(text).match()
    except QueryError as exc:
        assert "\n" not in str(exc)
        return
    db.execute("SELECT count(*) FROM entries_fts WHERE entries_fts MATCH ?", (expression,)).fetchone()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["oewg", "ransomware", "sanctions", "hotline", "report", "norms"]), min_size=1, max_size=3))
def test_every_document_found_has_every_word(db, words):
    for rowid in matching(db, " ".join(words)):
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
