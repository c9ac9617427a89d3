"""Learning from the desk: `briefings themes teach`, `review` and `corrections`, against a real feed
server and a real SQLite store, through the command line."""

from __future__ import annotations

import json
import re
import shutil
from html import escape

import pytest

from briefings import config as config_module
from briefings.classify import build_classifier, load_examples
from conftest import fixture_feed, state_store, write_config

# Stories on one subject the shipped model has not learned as a theme: satellite operators warning
# each other about debris. The desk files them under information-sharing; the third is never taught.
DEBRIS = [
    ("debris-1", "Satellite operators warn each other of a debris cloud after a rocket body breaks up",
     "Operators of commercial constellations traded orbital data on the fragments within hours and moved "
     "twelve spacecraft, the tracking network said."),
    ("debris-2", "Operators trade conjunction warnings as a fragment cloud spreads across low orbit",
     "Commercial constellations passed orbital data on the debris to each other and adjusted the orbits of "
     "several spacecraft to avoid the fragments."),
    ("debris-3", "Fragment cloud from a broken rocket body prompts constellations to move spacecraft",
     "Commercial operators shared orbital data on the debris and several spacecraft were moved away from "
     "the fragments in low orbit, the tracking network said."),
]
OTHER = ("bread", "A recipe for sourdough bread", "Mix flour, water and salt, leave it overnight and bake it hot.")


def rss(items) -> str:
    body = "".join(
        f"<item><title>{escape(title)}</title><link>https://desk.example.org/{key}</link><guid>{key}</guid>"
        f"<pubDate>Mon, 16 Nov 2026 0{n}:00:00 GMT</pubDate><description>{escape(text)}</description></item>"
        for n, (key, title, text) in enumerate(items)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Desk</title><link>https://desk.example.org/</link>{body}</channel></rss>'


def url(key: str) -> str:
    return f"https://desk.example.org/{key}"


def primary(cli_run, cfg, ref) -> str:
    out = cli_run("--config", cfg, "themes", "explain", ref).stdout
    if "Off-topic" in out.splitlines()[2]:
        return "off-topic"
    return re.search(r"(?:Primary theme|Corrected by the desk[^:]*): ([a-z-]+)", out).group(1)


@pytest.fixture
def desk(tmp_path, feed_server, cli_run):
    feed = feed_server.add("/desk.rss", rss([*DEBRIS, OTHER]))
    cfg = write_config(tmp_path, [("Desk", feed)], corpus=None)
    assert cli_run("--config", cfg, "collect").exit_code == 0
    return cfg


def test_teaching_moves_the_entry_and_a_similar_unseen_one(desk, cli_run):
    before = {key: primary(cli_run, desk, url(key)) for key, _, _ in DEBRIS}
    assert "information-sharing" not in before.values(), before
    unrelated = primary(cli_run, desk, url("bread"))
    for n, (key, _, _) in enumerate(DEBRIS[:2]):
        result = cli_run("--config", desk, "themes", "teach", url(key), "information-sharing")
        assert result.exit_code == 0, result.output
        assert "pending entries again" in result.stderr
        if n == 0:
            assert f"{before[key]} -> information-sharing" in result.stdout
    assert primary(cli_run, desk, url("debris-1")) == "information-sharing"
    # The third story was never taught; it moves because it is like the corrected ones.
    explained = cli_run("--config", desk, "themes", "explain", url("debris-3")).stdout
    assert "Primary theme: information-sharing" in explained
    assert re.search(r"like corrected entry #\d+", explained)
    assert primary(cli_run, desk, url("bread")) == unrelated
    # The next briefing files all three there.
    run = json.loads(cli_run("--config", desk, "run", "--json").stdout)
    assert run["by_theme"].get("information-sharing") == 3


def test_teach_off_topic_leaves_an_entry_out(tmp_path, feed_server, cli_run):
    feed = feed_server.add("/norms.rss", fixture_feed("norms.rss"))
    cfg = write_config(tmp_path, [("Norms Watch", feed)], corpus=None)
    cli_run("--config", cfg, "collect")
    hotline = "https://norms.example.org/2026/osce-hotline"
    assert primary(cli_run, cfg, hotline) == "confidence-building"
    planned = json.loads(cli_run("--config", cfg, "run", "--dry-run", "--json").stdout)
    result = cli_run("--config", cfg, "themes", "teach", hotline, "off-topic")
    assert result.exit_code == 0 and "confidence-building -> off-topic" in result.stdout
    explained = cli_run("--config", cfg, "themes", "explain", hotline).stdout
    assert "Corrected by the desk" in explained and "off-topic" in explained
    run = json.loads(cli_run("--config", cfg, "run", "--json").stdout)
    assert run["off_topic"] == planned["off_topic"] + 1
    assert run["by_theme"].get("confidence-building", 0) == planned["by_theme"]["confidence-building"] - 1
    page = (tmp_path / "archive" / f"{run['briefing']['slug']}.html").read_text()
    assert "test their cyber hotline" not in page


def test_corrections_survive_a_restart_and_an_archive_rebuild(tmp_path, feed_server, cli_run, backend):
    feed = feed_server.add("/norms.rss", fixture_feed("norms.rss"))
    cfg = write_config(tmp_path, [("Norms Watch", feed)], corpus=None)
    run = json.loads(cli_run("--config", cfg, "run", "--json").stdout)
    archive = tmp_path / "archive"
    hotline = "https://norms.example.org/2026/osce-hotline"
    title = "OSCE participating States test their cyber hotline"
    assert title in (archive / "themes" / "confidence-building.html").read_text()
    with state_store(tmp_path) as store:
        before = store.briefings.all()[0].theme_counts
    # Taught after its briefing: the entry moves in that briefing and on the theme pages at once.
    result = cli_run("--config", cfg, "themes", "teach", hotline, "international-fora", "--also", "risk-reduction")
    assert result.exit_code == 0, result.output
    assert "moved in briefing" in result.stdout
    assert title in (archive / "themes" / "international-fora.html").read_text()
    assert title not in (archive / "themes" / "confidence-building.html").read_text()
    # A new process, a new store connection: the correction is in the store, not in memory.
    with state_store(tmp_path) as store:
        entry, classification = store.entries.find(hotline)
        assert classification.themes == ("international-fora", "risk-reduction")
        counts = store.briefings.all()[0].theme_counts
    assert counts.get("international-fora", 0) == before.get("international-fora", 0) + 1
    assert counts.get("confidence-building", 0) == before["confidence-building"] - 1
    shutil.rmtree(archive)
    assert cli_run("--config", cfg, "archive", "rebuild").exit_code == 0
    assert title in (archive / "themes" / "international-fora.html").read_text()
    assert title not in (archive / "themes" / "confidence-building.html").read_text()
    page = (archive / f"{run['briefing']['slug']}.html").read_text()
    section = page[page.index("International fora"):]
    assert title in section
    assert "Corrected by the desk" in cli_run("--config", cfg, "themes", "explain", hotline).stdout


def test_corrections_export_in_the_examples_format(desk, cli_run, tmp_path):
    assert "No corrections yet" in cli_run("--config", desk, "themes", "corrections").stdout
    cli_run("--config", desk, "themes", "teach", url("debris-1"), "information-sharing", "--also", "critical-infrastructure")
    cli_run("--config", desk, "themes", "teach", url("bread"), "off-topic")
    listed = cli_run("--config", desk, "themes", "corrections").stdout
    assert "information-sharing +1" in listed and "off-topic" in listed
    out = tmp_path / "corrections.jsonl"
    result = cli_run("--config", desk, "themes", "corrections", "--export", out)
    assert result.exit_code == 0 and "Wrote 2 corrections" in result.stderr
    examples = load_examples(out)
    assert [(e.theme, e.title) for e in examples] == [("information-sharing", DEBRIS[0][1]), (None, OTHER[1])]
    assert DEBRIS[0][2] in examples[0].text
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0]["secondary"] == ["critical-infrastructure"] and lines[0]["source"] == url("debris-1")
    # Shipped in another installation's examples file, they teach it the same.
    other = write_config(tmp_path / "other", [], corpus=None, extra=f'[classify]\nexamples = "{out}"\n')
    classifier = build_classifier(config_module.load(other))
    assert classifier.classify_text(DEBRIS[2][1], DEBRIS[2][2]).theme == "information-sharing"
    assert classifier.classify_text(OTHER[1], OTHER[2]).theme is None


@pytest.mark.parametrize(
    "args,message",
    [
        (["https://desk.example.org/debris-1", "no-such-theme"], "no theme 'no-such-theme'"),
        (["https://desk.example.org/debris-1", "off-topic", "--also", "collaboration"], "an off-topic entry has no other themes"),
        (["https://desk.example.org/debris-1", "collaboration", "--also", "collaboration"], "collaboration is the primary theme"),
        (["https://nowhere.example.org/", "collaboration"], "no stored entry matches"),
    ],
)
def test_teach_refuses_bad_input_in_one_line(desk, cli_run, args, message):
    result = cli_run("--config", desk, "themes", "teach", *args)
    assert result.exit_code == 1
    assert message in result.stderr and "Traceback" not in result.stderr
    assert "No corrections yet" in cli_run("--config", desk, "themes", "corrections").stdout


def test_review_lists_the_least_sure_first(desk, cli_run):
    result = cli_run("--config", desk, "themes", "review", "--limit", "3")
    assert result.exit_code == 0
    rows = result.stdout.splitlines()[1:]
    assert len(rows) == 3
    sure = [float(row.split()[1]) for row in rows]
    assert sure == sorted(sure)
    everything = cli_run("--config", desk, "themes", "review").stdout.splitlines()[1:]
    assert len(everything) == 4 and [row.split()[0] for row in everything[:3]] == [row.split()[0] for row in rows]
    # A corrected entry is settled: review no longer asks about it.
    taught = rows[0].split()[0]
    cli_run("--config", desk, "themes", "teach", taught, "off-topic")
    after = cli_run("--config", desk, "themes", "review").stdout.splitlines()[1:]
    assert taught not in [row.split()[0] for row in after] and len(after) == 3
