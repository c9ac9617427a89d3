"""Norms themes: each theme's signal, user themes, off-topic, evidence, and the classify command's JSON."""

from __future__ import annotations

import json
from dataclasses import replace

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
    in_title = c.term_scores("Hotline tested")["t"]
    in_body = c.term_scores("News", "", "hotline tested")["t"]
    assert in_title == pytest.approx(3 * in_body)
    long_body = " ".join(["word"] * 5000) + " hotline"
    assert c.term_scores("News", "", long_body)["t"] < in_body


def test_evidence_names_terms_fields_and_weights(classifier):
    title, text = TYPICAL["confidence-building"]
    result = classifier.classify_text(title, text)
    matches = {(m.term, m.field) for m in result.evidence["confidence-building"]}
    assert ("hotline", "title") in matches and ("escalation", "summary") in matches
    lines = explain(result, "confidence-building")
    assert any(line.startswith('+  "hotline" in the title') for line in lines)
    # The model's words and phrases that decided the theme, and the on-topic call, with their weights.
    model = [m for m in result.evidence["confidence-building"] if m.field == "model"]
    assert model and all(m.weight > 0 for m in model)
    assert any(line.endswith('(theme model)') and f'"{model[0].term}"' in line for line in lines)
    assert any(m.field == "on-topic" and m.weight > 0 for m in result.evidence["confidence-building"])


def test_the_previous_classifier_is_kept(tmp_path):
    """[classify] method = "terms": terms and likeness to the examples, as before the model."""
    settings = replace(SHIPPED.classify, method="terms")
    result = build_classifier(replace(SHIPPED, classify=settings)).classify_text(*TYPICAL["confidence-building"])
    assert result.theme == "confidence-building"
    assert any(m.field == "similarity" for m in result.evidence["confidence-building"])
    assert result.on_topic is None


def test_secondary_themes_follow_the_primary(classifier):
    result = classifier.classify_text(
        "OSCE states agree confidence-building measures to protect critical infrastructure",
        "The new CBM asks states to protect power grids, hospitals and water utilities, and to use the hotline and points of contact if an attack on critical infrastructure threatens escalation.",
    )
    assert result.theme == "confidence-building"
    assert result.secondary == ("critical-infrastructure",)
    # One clear theme: no secondary.
    assert classifier.classify_text(*TYPICAL["risk-reduction"]).secondary == ()


def test_terms_secondary_themes_reach_their_share_of_the_primary():
    terms = build_classifier(replace(SHIPPED, classify=replace(SHIPPED.classify, method="terms")))
    result = terms.classify_text(
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


# Each theme described in its own words rather than the taxonomy's (written for these tests, not
# taken from any labeled set): the model, not the keywords, has to find the theme.
PARAPHRASED = {
    "harmonization": ("Ministers agree to align their penal codes on computer offences",
                      "The member states will adopt the same definitions of illegal access, data interference and "
                      "online fraud, so that a prosecutor in one country can use evidence gathered in another and "
                      "suspects cannot shelter where the law is weaker."),
    "risk-reduction": ("Police switch off the servers steering a network of hijacked home routers",
                       "Investigators in four countries took control of the command servers behind hundreds of "
                       "thousands of infected routers, froze the operators' wallets and charged two suspects."),
    "transparency": ("Government explains for the first time how it decides to keep or reveal software flaws",
                     "The published policy sets out who sits on the review board, which criteria weigh towards "
                     "telling vendors, and promises a yearly public account of the decisions taken."),
    "collaboration": ("Companies, universities and rights groups join a government pledge on online security",
                      "More than eighty firms, research institutes and non-profit organisations signed the joint "
                      "declaration and will meet ministers twice a year to shape its commitments."),
    "proportionality": ("Foreign ministry sets out when a hostile operation on its networks would justify a response in kind",
                        "The paper argues that a cyber operation causing death or physical destruction is as grave "
                        "as a kinetic strike, and that any reply must be necessary and limited to ending the harm."),
    "information-sharing": ("Banks and regulators set up a common channel to pass on warnings about intrusions",
                            "Members will send details of suspicious addresses and attack techniques to a shared "
                            "platform within hours, and the regulator will circulate anonymised alerts to all."),
    "confidence-building": ("Rival states open a direct line for their cyber agencies to call each other in a crisis",
                            "Each side named a contact office reachable at any hour, agreed to test the link every "
                            "quarter and to warn the other before large military network exercises."),
    "capacity-building": ("Aid programme teaches officials in island states to run their own cyber defence",
                          "The aid-funded programme teaches civil servants, equips a national team and sends mentors "
                          "for two years to help small Pacific governments protect their networks."),
    "critical-infrastructure": ("Regulator orders the companies that run gas, rail and airports to shield their plant controls from hackers",
                                "Operators must separate the systems that steer pumps, signals and turbines from "
                                "office computers, report intrusions within a day and pass a yearly audit of their defences."),
    "incident-response": ("Government teams that handle hacking emergencies rehearse a joint reaction",
                          "For two days the national teams traded findings on a simulated intrusion into payment "
                          "systems, split the clean-up of infected networks and agreed who would alert the public."),
    "international-fora": ("Delegations in New York close a week of talks on rules for state behaviour online",
                           "Member states debated a permanent mechanism for the discussions, a final report for the "
                           "world body and how far earlier agreed principles should bind governments."),
    "secure-development": ("Software makers commit to ship products that are safe out of the box",
                           "The signatories will remove default passwords, publish how researchers can report flaws "
                           "to them and keep fixing their products for at least five years."),
}

# What a security or policy feed also carries that is not norms news: one of each trap, written for the test.
TRAPS = {
    "patch-roundup": ("This month's security updates patch 74 flaws, two already exploited",
                      "The vendor's monthly release corrects remote code execution bugs in the browser engine, the "
                      "print spooler and the mail client; administrators should install them this week."),
    "vulnerability-writeup": ("Researchers detail a heap overflow in a popular image library",
                              "A crafted file triggers an out-of-bounds write in the decoder. The flaw was reported "
                              "through the vendor's vulnerability disclosure programme and the post walks through the "
                              "crash and its root cause."),
    "malware-analysis": ("Inside a new loader that hides in fake browser updates",
                         "The sample unpacks itself in three stages, injects into a system process and talks to its "
                         "command server over encrypted DNS requests, according to the analysis."),
    "breach": ("Retailer says a ransomware gang stole the card details of 2 million customers",
               "The company discovered the intrusion last week, refused the extortion demand, reset staff passwords "
               "and is offering affected shoppers a year of credit monitoring."),
    "outage": ("Telecommunications outage takes mobile and internet service offline for six hours",
               "A faulty configuration change in the operator's core network cascaded to its routers; service was "
               "restored by rolling the change back, the company said."),
    "product-launch": ("Vendor unveils a firewall appliance for small offices",
                       "The new model offers faster throughput, a redesigned dashboard and a subscription for "
                       "automatic rule updates, from 499 dollars."),
    "ai-launch": ("Lab releases a larger language model with a longer context window",
                  "The model writes code, summarises long documents and is available to developers through an API "
                  "at half the previous price."),
    "funding": ("Identity security start-up raises 120 million dollars",
                "The round was led by growth investors and values the company at 1.5 billion dollars; it plans to "
                "hire engineers and expand in Europe."),
    "non-cyber-diplomacy": ("Negotiators agree a ceasefire and a prisoner exchange",
                            "After mediation by neighbouring states, both parties committed to withdraw heavy weapons "
                            "from the front line and to let aid convoys through."),
    "tech-policy-other": ("Competition authority fines a search giant for favouring its own shopping service",
                          "The regulator said the company demoted rival comparison sites in its results and must "
                          "change its ranking within ninety days."),
}


# Known miss of the shipped model, kept visible (strict: the test fails once the model gets it right, so this
# mark goes): the information-sharing paraphrase says "platform", "alert", "send" and "addresses", words the
# labeled set's vulnerability notices and product news use far more than its policy texts, and its on-topic
# probability is under the threshold (0.28 against 0.55). Adding 25 real plain-words information-sharing texts
# did not move it; a desk's correction of one entry like it does (the test after the traps' below).
KNOWN_MISSES = {"information-sharing"}


@pytest.mark.parametrize("theme_id", [
    pytest.param(t, marks=pytest.mark.xfail(strict=True, reason="a known miss of the shipped model: see KNOWN_MISSES"))
    if t in KNOWN_MISSES else t for t in PARAPHRASED])
def test_each_theme_in_other_words_classifies_to_it(classifier, theme_id):
    title, text = PARAPHRASED[theme_id]
    result = classifier.classify_text(title, text)
    assert result.theme == theme_id, (result.theme, result.scores)
    # Not the keywords: the theme's terms alone score below the threshold they would need.
    assert classifier.term_scores(title, text)[theme_id] < SHIPPED.classify.threshold


@pytest.mark.parametrize("trap", list(TRAPS))
def test_each_trap_stays_off_topic(classifier, trap):
    title, text = TRAPS[trap]
    result = classifier.classify_text(title, text)
    assert result.theme is None and result.themes == (), (result.scores, result.on_topic)
    assert any(m.field == "on-topic" and m.weight < 0 for m in result.evidence["off-topic"])


@pytest.mark.parametrize("theme_id", sorted(KNOWN_MISSES))
def test_one_correction_of_a_similar_entry_fixes_a_known_miss_and_no_trap_follows(theme_id):
    """What the desk does about a miss: teach one entry like it; the miss follows, the traps stay off topic."""
    from briefings.classify import Correction

    taught = Correction(1, "taught", theme_id, (), "Regulator opens a common channel for banks to share intrusion warnings",
                        "Banks will send details of suspicious addresses to a shared platform and the regulator will pass "
                        "alerts on to members.")
    classifier = Classifier(SHIPPED.themes, SHIPPED.classify, corrections=[taught])
    assert build_classifier(SHIPPED).classify_text(*PARAPHRASED[theme_id]).theme is None
    result = classifier.classify_text(*PARAPHRASED[theme_id])
    assert result.theme == theme_id
    assert any(m.term.startswith("like corrected entry #1") for m in result.evidence[theme_id])
    assert [t for t, (title, text) in TRAPS.items() if classifier.classify_text(title, text).theme is not None] == []


def test_a_run_with_nothing_new_never_loads_the_model(tmp_path, feed_server, cli_run, monkeypatch):
    from briefings import themes_model

    url = feed_server.add("/norms.rss", fixture_feed("norms.rss"))
    cfg = write_config(tmp_path, [("Norms Watch", url)], corpus=None)
    assert json.loads(cli_run("--config", cfg, "run", "--json").stdout)["briefing"] is not None

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(themes_model, "_LOADED", {})
    monkeypatch.setattr(themes_model.ThemeModel, "load", refuse)
    again = json.loads(cli_run("--config", cfg, "run", "--json").stdout)
    assert again["nothing_new"] and again["pending"] == 0
    with pytest.raises(AssertionError, match="the model was loaded"):
        build_classifier(config_module.load(cfg)).classify_text("OSCE hotline test")


# A run in a fresh process, which then says whether it imported NumPy and read the model.
RUN_THEN_REPORT_MODULES = """
import json, sys
from briefings.cli import cli
try:
    cli(["--config", sys.argv[1], "run", "--json"])
except SystemExit as end:
    assert not end.code, end.code
model = sys.modules.get("briefings.themes_model")
print(json.dumps({"numpy": "numpy" in sys.modules, "model": bool(model and model._LOADED)}), file=sys.stderr)
"""


def test_a_run_with_nothing_new_imports_neither_numpy_nor_the_model(tmp_path, feed_server):
    import subprocess
    import sys

    url = feed_server.add("/norms.rss", fixture_feed("norms.rss"))
    cfg = write_config(tmp_path, [("Norms Watch", url)], corpus=None)
    reports = []
    for _ in range(2):  # the first run has entries to classify; the second, nothing new
        run = subprocess.run([sys.executable, "-c", RUN_THEN_REPORT_MODULES, str(cfg)],
                             capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        reports.append((json.loads(run.stdout), json.loads(run.stderr.splitlines()[-1])))
    (first, loaded), (second, idle) = reports
    assert first["briefing"] is not None and loaded == {"numpy": True, "model": True}
    assert second["nothing_new"] and idle == {"numpy": False, "model": False}


def test_a_broken_model_file_is_one_clear_error(tmp_path):
    from briefings.errors import ConfigError

    broken = tmp_path / "themes.json"
    broken.write_text('{"format": 1, "themes": [', encoding="utf-8")
    classifier = Classifier(SHIPPED.themes, SHIPPED.classify, model_path=broken)
    with pytest.raises(ConfigError) as caught:
        classifier.classify_text("OSCE hotline test")
    assert "cannot read the theme model" in caught.value.message and 'method = "terms"' in caught.value.hint


@pytest.mark.parametrize("title,text", [
    (TYPICAL["confidence-building"][0], TYPICAL["confidence-building"][1]),
    ("Working group, working group: the open-ended working group", "Points of contact; points of contact test the hotline."),
    ("", "Critical infrastructure operators and the critical infrastructure agency"),
    ("Ransomware", ""),
])
def test_the_fast_feature_path_gives_the_vector_of_the_features(title, text):
    """The scoring path looks bigrams up without building them; its vector is the one of ``features``."""
    from briefings.classify import content_tokens
    from briefings.themes_model import features, shipped_model

    model = shipped_model()
    fast = model.as_dict(*model.vector(model.ids(content_tokens(title), content_tokens(text))))
    full = model.as_dict(*model.vector(model.ids_of(features(title, text))))
    assert fast.keys() == full.keys() and fast
    assert all(abs(fast[f] - full[f]) < 1e-12 for f in full)


@pytest.mark.parametrize("title,text", [
    (TYPICAL["confidence-building"][0], TYPICAL["confidence-building"][1]),
    (TYPICAL["incident-response"][0], TYPICAL["incident-response"][1]),
    ("Quarterly patch roundup", "Vendors fixed forty vulnerabilities in browsers and routers this month."),
])
def test_the_split_weight_tables_score_as_the_model_file(title, text):
    """The theme, on-topic and secondary models, kept in separate tables and scored a batch at a time, give
    the dot products of the file, whatever else is in the batch."""
    from briefings.classify import content_tokens
    from briefings.themes_model import MODEL_PATH, shipped_model

    data = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    model = shipped_model()
    others = [model.ids(content_tokens(t), content_tokens(x)) for t, x in (TYPICAL["transparency"], ("", ""))]
    batch = model.score([others[0], model.ids(content_tokens(title), content_tokens(text)), others[1]])
    vec = model.as_dict(*batch.vector(1))
    themes = data["themes"]
    on = data["on_topic"]["intercept"] + sum(x * data["features"][f][1] for f, x in vec.items())
    logits = list(data["intercepts"])
    secondary = list(data["secondary_intercepts"])
    for f, x in vec.items():
        for i, w in data["features"][f][2]:
            logits[i] += x * w
        for i, w in data["features"][f][3]:
            secondary[i] += x * w
    assert vec and abs(batch.on_logits[1] - on) < 1e-9
    assert all(abs(batch.logits[1][i] - logits[i]) < 1e-9 for i in range(len(themes)))
    expected = {t: secondary[i] for i, t in enumerate(themes) if data["secondary_thresholds"][i] < 1.0}
    got = dict(zip(model.secondary_themes, batch.secondary[1]))
    assert got.keys() == expected.keys() and all(abs(got[t] - expected[t]) < 1e-9 for t in expected)
    best = themes[max(range(len(themes)), key=lambda i: logits[i])]
    parts = {f: w for w, f in model.contributions(batch, 1, best)}
    assert parts == {f: x * dict(data["features"][f][2])[themes.index(best)]
                     for f, x in vec.items() if themes.index(best) in dict(data["features"][f][2])}
    strongest = model.strongest(batch, [None, model.column(best), None], 6)
    assert strongest[0] == strongest[2] == [] and strongest[1] == sorted(
        [(w, f) for f, w in parts.items() if w > 0], reverse=True)[:6]


@pytest.mark.parametrize("words,kept", [
    (["the", "osce", "of", "hotline"], ["osce", "hotline"]),
    (["eu", "un", "2024", "cert"], ["cert"]),
    (["g7", "x9z", "among", "ransomware"], ["x9z", "ransomware"]),
])
def test_content_words_drop_stopwords_short_words_and_numbers(words, kept):
    from briefings.classify import content_words

    assert content_words(words) == kept
    assert content_words(words) == kept  # the second time from the cache


USER_THEME = config_module.Theme("space-security", "Space security", "Cyber operations against satellites.",
                                 ("satellite", "ground station"))
BATCH_TEXTS = [
    *((title, text, "") for title, text in TYPICAL.values()),
    *((title, "", text) for title, text in OFF_TOPIC),
    ("", "", ""),  # nothing to read
    ("Flour", "", ""),  # one word the model does not know
    ("Hackers target a satellite ground station", "The satellite operator said the ground station was hit.", ""),
    ("<b>Ransomware</b>", "<p>The CERT said the <i>hotline</i> worked.</p>", "<p>Points of contact answered.</p>"),
]


@pytest.mark.parametrize("themes", [SHIPPED.themes, (*SHIPPED.themes, USER_THEME)], ids=["shipped", "with-a-user-theme"])
def test_a_batch_decides_each_text_as_it_would_alone(themes):
    """The model scores a batch together; no text's decision, scores or evidence depends on its neighbours."""
    classifier = Classifier(themes, SHIPPED.classify)
    alone = [classifier.classify_text(*text) for text in BATCH_TEXTS]
    together = classifier.classify_texts(BATCH_TEXTS)
    backwards = classifier.classify_texts(BATCH_TEXTS[::-1])[::-1]
    assert together == alone and backwards == alone
    assert {r.theme for r in alone} >= {None, *TYPICAL}
    if USER_THEME in themes:
        assert alone[-2].theme == "space-security"


def test_a_batch_keeps_a_corrected_entry_in_its_place():
    from briefings.classify import Correction
    from briefings.models import Entry

    entries = [Entry(key=f"k{i}", source_kind="feed", source_name="f", title=title, summary_html=text)
               for i, (title, text) in enumerate(TYPICAL.values())]
    correction = Correction(7, "k1", "transparency", ("collaboration",), entries[1].title, entries[1].summary_html)
    classifier = Classifier(SHIPPED.themes, SHIPPED.classify, corrections=[correction])
    results = classifier.classify_many(entries)
    assert [r.theme for r in results] == [list(TYPICAL)[0], "transparency", *list(TYPICAL)[2:]]
    assert results[1].source == "correction" and results[1].themes == ("transparency", "collaboration")
    assert results == [classifier.classify(e) for e in entries]


def test_classify_answers_each_line_a_program_writes_before_it_writes_the_next(tmp_path):
    """Lines are classified in batches only while more are waiting: a program that writes a line and waits for
    its answer (stdin still open) gets it."""
    import select
    import subprocess
    import sys

    cfg = write_config(tmp_path, [], corpus=None)
    with subprocess.Popen([sys.executable, "-m", "briefings", "--config", str(cfg), "classify", "-"], cwd=tmp_path,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as child:
        assert child.stdin is not None and child.stdout is not None
        try:
            for number, (theme, (title, text)) in enumerate(list(TYPICAL.items())[:2], start=1):
                child.stdin.write(json.dumps({"id": number, "title": title, "text": text}) + "\n")
                child.stdin.flush()
                ready, _, _ = select.select([child.stdout], [], [], 60)
                assert ready, "no answer while the input stays open"
                answer = json.loads(child.stdout.readline())
                assert (answer["id"], answer["theme"]) == (number, theme)
        finally:
            child.stdin.close()
            child.wait(timeout=60)
    assert child.returncode == 0


def test_the_logistic_of_a_huge_score_is_exact_and_silent():
    """Many corrections alike can push a score past what exp() can hold: no overflow warning reaches the user."""
    import warnings

    import numpy as np

    from briefings.themes_model import logistic

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert logistic(np.array([-1000.0, 0.0, 1000.0])).tolist() == [0.0, 0.5, 1.0]
