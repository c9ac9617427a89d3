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
