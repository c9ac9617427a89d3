"""Plain text and excerpts out of feed HTML."""

from briefings.text import excerpt, html_to_text, plain_title, sentences


def test_html_to_text_drops_markup_and_keeps_paragraphs():
    text = html_to_text("<p>One &amp; two.</p><script>alert(1)</script><p>Three<br>four</p><!-- hidden -->")
    assert text == "One & two.\nThree\nfour"


def test_plain_title_decodes_entities_and_tags():
    assert plain_title("  <b>UN</b> &ldquo;OEWG&rdquo;\n report ") == "UN \u201cOEWG\u201d report"


def test_sentences_respect_abbreviations():
    assert sentences("The U.S. and the E.U. agreed. Then e.g. Dr. Smith spoke. End.") == [
        "The U.S. and the E.U. agreed.",
        "Then e.g. Dr. Smith spoke.",
        "End.",
    ]


def test_excerpt_skips_headings_and_the_title_and_stops_at_count():
    text = "Background\nOEWG adopts report\nStates agreed. They met twice. A third. A fourth."
    assert excerpt(text, 3, skip="OEWG adopts report.") == "States agreed. They met twice. A third."


def test_excerpt_cuts_a_long_sentence_on_a_word():
    out = excerpt("word " * 200 + ".", 2, max_chars=50)
    assert out.endswith("\u2026") and len(out) <= 51 and " wor\u2026" not in out


def test_html_to_text_collapses_odd_spaces_and_blank_lines():
    markup = "<div>\t A\u00a0\u00a0b  c\r\n \n\n\t</div>\n  <p>d\u2003e\x0bf</p>  \n"
    # Runs of spaces, tabs and no-break spaces become one space; a lone space is kept;
    # lines are trimmed and blank ones dropped; other Unicode spaces (U+2003) are kept.
    assert html_to_text(markup) == "A b c\nd\u2003e f"
    assert html_to_text("one two") == "one two"
    assert html_to_text(" \n \t\n") == ""


def test_first_words_reads_only_as_far_as_it_needs_and_never_cuts_a_word():
    from briefings.identity import WORD, first_words

    text = " ".join(f"w{i}" + "x" * (i % 17) for i in range(3000))
    for count in (1, 6, 60, 61, 500):
        assert first_words(text, count) == WORD.findall(text)[:count]
    # A word that straddles the first scan window is read whole.
    long_word = "a" * 2000
    assert first_words(f"{long_word} b", 2) == [long_word, "b"]
    assert first_words("only three words", 60) == ["only", "three", "words"]


def test_fingerprint_with_the_opening_words_given_is_the_fingerprint_without_them():
    from briefings.identity import FINGERPRINT_WORDS, fingerprint, first_words

    cases = [
        ("UN OEWG adopts its annual report", "States agreed on norms. " * 30),
        ("Short", "one two three four five"),
        ("", "word " * 100),
        # Lowercasing moves word boundaries outside ASCII (\u0130 becomes i + a combining dot).
        ("\u0130stanbul talks on cyber norms", "D\u0130PLOMAT\u0130K g\u00f6r\u00fc\u015fmeler " * 20),
    ]
    for title, text in cases:
        assert fingerprint(title, text, first_words(text, FINGERPRINT_WORDS)) == fingerprint(title, text)
    assert fingerprint("Short", "one two") is None
