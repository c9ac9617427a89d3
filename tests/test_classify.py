"""Norms themes: each theme's signal, user themes, off-topic, evidence, and the classify command's JSON."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from briefings import config as config_module
from briefings.classify import Classifier, build_classifier, explain
from briefings.cli import cli
from conftest import ROOT, fixture_feed, write_config

SHIPPED = config_module.load(ROOT / "config.toml")

# One typical item per theme, written for these tests (not taken from the labeled set).
TYPICAL = {
    "harmonization": ("Parliament votes to ratify the Budapest Convention", "Lawmakers approved accession to the Council of Europe convention on cybercrime, aligning the criminal code with other parties and joining mutual legal assistance channels."),
    "risk-reduction": ("Police dismantle botnet used by ransomware gang", "A takedown coordinated by Europol seized servers and arrested suspects behind the botnet."),
    "transparency": ("Defence ministry publishes its cyber doctrine", "The doctrine explains when the armed forces may conduct cyber operations and how parliament oversees them, in a move towards transparency."),
    "collaboration": ("Ministry opens consultation with industry and civil society on norms", "The multi-stakeholder consultation invites companies, academics and NGOs to comment on the draft position."),
    "proportionality": ("How international law limits countermeasures in cyberspace", "The article examines proportionality, sovereignty and state responsibility when a state responds to a cyber operation below the threshold of an armed attack."),
    "information-sharing": ("Banks join ISAC to share threat intelligence", "Members exchange indicators of compromise and incident reports through the information sharing and analysis centre."),
    "confidence-building": ("States test the cyber hotline between points of contact", "The OSCE confidence-building measure aims to prevent escalation and misperception during incidents."),
    "capacity-building": ("Donors fund cyber capacity building in developing countries", "The GFCE programme trains officials and helps set up national CERTs in emerging economies."),
    "critical-infrastructure": ("Attack on the power grid cuts electricity to thousands", "Officials said the operation against the electric grid and water utilities shows critical infrastructure needs better protection."),
    "incident-response": ("CSIRTs coordinate incident response to a worm", "National computer emergency response teams shared forensic findings and coordinated the response with responders abroad."),
    "international-fora": ("UN open-ended working group opens its final session", "Delegations at the OEWG discussed the programme of action and the norms of responsible state behaviour agreed in earlier GGE reports."),
    "secure-development": ("Vendors pledge secure by design and coordinated vulnerability disclosure", "The pledge covers memory-safe languages, a software bill of materials and security updates for the product's life."),
}

OFF_TOPIC = [
    ("Chipmaker shares fell after weak quarterly guidance", "Revenue missed expectations and the stock dropped 9 percent."),
    ("Review: the best laptop of the year", "We tested battery life, keyboard and screen quality of twelve models."),
    ("Step-by-step tutorial: build a home media server", "Install the software, add your library and stream to your TV."),
]


@pytest.fixture(scope="module")
def classifier():
    return build_classifier(SHIPPED)


@pytest.mark.parametrize("theme_id", list(TYPICAL))
def test_each_theme_typical_signal_classifies_to_it(classifier, theme_id):
    title, text = TYPICAL[theme_id]
    result = classifier.classify_text(title, text)
    assert result.theme == theme_id, (result.theme, result.scores)
    assert result.themes[0] == theme_id


@pytest.mark.parametrize("title,text", OFF_TOPIC)
def test_off_topic_stays_off(classifier, title, text):
    result = classifier.classify_text(title, text)
    assert result.theme is None and result.themes == ()


def test_variants_match_one_term():
    theme = config_module.Theme("cbm", "CBMs", "", ("confidence-building measure",))
    settings = config_module.ClassifySettings(threshold=1.0, similarity_weight=0.0)
    c = Classifier((theme,), settings)
    for text in ("Confidence Building Measures", "confidence-building measure", "CONFIDENCE-BUILDING MEASURES", "confidence\u2011building measures"):
        result = c.classify_text(text)
        assert result.theme == "cbm", text
        assert result.evidence["cbm"][0].term == "confidence-building measure"
    assert Classifier((theme,), settings).classify_text("Confidence in building").theme is None


def test_diacritics_fold():
    theme = config_module.Theme("coop", "Cooperation", "", ("cooperacion internacional",))
    c = Classifier((theme,), config_module.ClassifySettings(threshold=1.0, similarity_weight=0.0))
    assert c.classify_text("Cooperaci\u00f3n Internacional en ciberseguridad").theme == "coop"


def test_title_outweighs_body_and_long_bodies_are_damped():
    theme = config_module.Theme("t", "T", "", ("hotline",))
    c = Classifier((theme,), config_module.ClassifySettings(threshold=0.1, similarity_weight=0.0))
    in_title = c.classify_text("Hotline tested").scores["t"]
    in_body = c.classify_text("News", "", "hotline tested").scores["t"]
    assert in_title == pytest.approx(3 * in_body)
    long_body = " ".join(["word"] * 5000) + " hotline"
    assert c.classify_text("News", "", long_body).scores["t"] < in_body


def test_evidence_names_terms_fields_and_weights(classifier):
    title, text = TYPICAL["confidence-building"]
    result = classifier.classify_text(title, text)
    matches = {(m.term, m.field) for m in result.evidence["confidence-building"]}
    assert ("hotline", "title") in matches and ("escalation", "summary") in matches
    lines = explain(result, "confidence-building")
    assert any(line.startswith('+  "hotline" in the title') for line in lines)
    assert any("like the theme's examples" in line for line in lines)


def test_secondary_themes_follow_the_primary(classifier):
    result = classifier.classify_text(
        "OSCE states agree confidence-building measures to protect critical infrastructure",
        "The new CBM asks states to protect power grids, hospitals and water utilities, and to use the hotline and points of contact if an attack on critical infrastructure threatens escalation.",
    )
    assert result.theme == "confidence-building"
    assert result.secondary == ("critical-infrastructure",)
    # The rule itself: a secondary theme reaches secondary_share of the primary's score; no other theme does.
    share = SHIPPED.classify.secondary_share
    top = result.scores[result.theme]
    assert result.scores["critical-infrastructure"] >= share * top
    assert all(score < share * top for theme, score in result.scores.items() if theme not in result.themes)
    # One clear theme: no secondary.
    assert classifier.classify_text(*TYPICAL["risk-reduction"]).secondary == ()


def test_user_added_theme_in_config_works(tmp_path, cli_run):
    themes = '''
[themes.space-security]
name = "Space security"
description = "Cyber operations against satellites and ground stations."
terms = ["satellite", "ground station", "space segment"]
weights = { "ground station" = 2.0 }

[themes.harmonization]
name = "Harmonization"
description = "Aligning laws."
terms = ["budapest convention"]
'''
    cfg = write_config(tmp_path, [], corpus=None, themes=themes, extra="[classify]\nthreshold = 1.0\n")
    lines = [
        {"id": 1, "title": "Hackers target satellite ground station", "text": "The space segment was not affected."},
        {"id": 2, "title": "Country joins the Budapest Convention", "text": ""},
        {"id": 3, "title": "A recipe for bread", "text": "Flour, water, salt."},
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(x) + "\n" for x in lines))
    result = cli_run("--config", cfg, "classify", source)
    assert result.exit_code == 0, result.output
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert out[0]["theme"] == "space-security" and "ground station" in out[0]["evidence"]["space-security"]
    assert out[1]["theme"] == "harmonization"
    assert out[2]["theme"] is None and out[2]["themes"] == []


def test_classify_command_round_trips_odd_input(tmp_path, cli_run):
    cfg = write_config(tmp_path, [], corpus=None)
    megabyte = "<p>" + ("The OSCE hotline connects points of contact. " * 23000) + "</p>"
    assert len(megabyte) > 1_000_000
    items = [
        {"id": "empty", "title": "", "text": ""},
        {"id": "html-only", "title": "", "text": "<div><script>x()</script><img src=x onerror=y></div>"},
        {"id": "non-english", "title": "\u7f51\u7edc\u5b89\u5168\u89c4\u8303", "text": "\u00c9tats et cybers\u00e9curit\u00e9: la Convention de Budapest \u2014 \u0441\u043e\u0442\u0440\u0443\u0434\u043d\u0438\u0447\u0435\u0441\u0442\u0432\u043e"},
        {"id": 7, "title": "UN OEWG \"quoted\" \\ title\nwith newline", "text": None},
        {"id": "big", "title": "Big", "text": megabyte},
        {"title": "no id"},
    ]
    text = "".join(json.dumps(x) + "\n" for x in items) + "not json\n" + "[1, 2]\n"
    result = CliRunner().invoke(cli, ["--config", str(cfg), "classify", "-"], input=text)
    assert result.exit_code == 1  # the two bad lines
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == len(items) + 2
    assert [o["id"] for o in out[: len(items)]] == ["empty", "html-only", "non-english", 7, "big", None]
    for o in out[: len(items)]:
        assert set(o) == {"id", "theme", "themes", "scores", "evidence"}
        assert o["theme"] is None or o["theme"] == o["themes"][0]
    assert out[0]["theme"] is None and out[1]["theme"] is None
    assert out[4]["theme"] == "confidence-building"
    assert out[-2] == {"id": None, "line": 7,
                       "error": "not JSON (Expecting value at column 1): write one JSON object per line"}
    assert out[-1] == {"id": None, "line": 8, "error": "expected a JSON object, got an array: write one JSON object per line"}


def test_themes_command_counts_and_explain(tmp_path, feed_server, cli_run):
    url = feed_server.add("/norms.rss", fixture_feed("norms.rss"))
    cfg = write_config(tmp_path, [("Norms Watch", url)], corpus=None)
    cli_run("--config", cfg, "run")
    table = cli_run("--config", cfg, "themes").stdout
    assert table.splitlines()[0].split() == ["ID", "ENTRIES", "NAME"]
    counts = {line.split()[0]: int(line.split()[1]) for line in table.splitlines()[1:] if line[:1] != " "}
    assert sum(counts.values()) == 4
    assert counts["off-topic"] == 1  # the laptop launch
    result = cli_run("--config", cfg, "themes", "explain", "https://norms.example.org/2026/osce-hotline")
    assert result.exit_code == 0, result.output
    assert "Primary theme: confidence-building" in result.stdout
    assert '"hotline" in the title' in result.stdout
    missing = cli_run("--config", cfg, "themes", "explain", "https://nowhere.example.org/")
    assert missing.exit_code == 1 and "no stored entry matches" in missing.stderr


def test_check_warns_about_the_taxonomy(tmp_path, cli_run):
    themes = '''
[themes.a]
name = "A"
terms = ["hotline", "Points of contact"]
[themes.b]
name = "B"
terms = ["point of contact"]
[themes.c]
name = "C"
terms = []
'''
    cfg = write_config(tmp_path, [], corpus=None, themes=themes)
    result = cli_run("--config", cfg, "check")
    assert result.exit_code == 0
    assert "theme c has no terms" in result.stderr
    assert "'point of contact' is listed under several themes (a, b)" in result.stderr
    assert cli_run("--config", ROOT / "config.toml", "check").stderr == ""
