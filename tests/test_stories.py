"""Story grouping (briefings/stories.py): one event in two wordings is one story; different events
with the same actors stay apart; the lead report and explain say why."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from briefings.stories import Report, explain, group

DAY = datetime(2025, 3, 3, 9, tzinfo=timezone.utc)

# Filler reports, so that document frequencies look like a week's briefing and not like a pair alone.
FILLER = [
    Report(id=100 + i, title=title, text=text, source="Filler", when=DAY + timedelta(hours=i))
    for i, (title, text) in enumerate([
        ("Ministry publishes cyber doctrine", "The defence ministry explained when its forces may conduct cyber operations and how parliament oversees them."),
        ("Banks share threat intelligence", "Members of the sector's ISAC exchange indicators of compromise and incident reports every week."),
        ("Donors fund national CERTs", "A programme trains officials and helps set up computer emergency response teams in emerging economies."),
        ("Vendors pledge secure by design", "The pledge covers memory-safe languages, a software bill of materials and security updates."),
    ])
]

SAME_EVENT = [
    (Report(1, "Police in eight countries take down the Emotet botnet",
            "Europol said investigators from the Netherlands, Germany, the United States and Ukraine took control of Emotet's servers, one of the most significant botnets of the decade.",
            "Wire A", DAY),
     Report(2, "Emotet malware network seized in international operation",
            "Law enforcement coordinated by Europol and the FBI now controls the infrastructure of Emotet, which gangs rented to install ransomware and steal data.",
            "Wire B", DAY + timedelta(hours=5))),
    (Report(3, "UN committee approves first global cybercrime treaty",
            "Member states in the Ad Hoc Committee in New York agreed the draft convention on cybercrime by consensus after three years of talks; it now goes to the General Assembly.",
            "Wire A", DAY),
     Report(4, "States agree text of UN cybercrime convention",
            "The Ad Hoc Committee closed its concluding session by adopting the draft UN convention against cybercrime, which rights groups say lacks safeguards. The General Assembly votes later.",
            "Wire C", DAY + timedelta(days=1))),
]

# Different events with the same actors or topic: each pair must stay two stories.
TRAPS = {
    "another country accedes to the same convention": (
        Report(11, "Japan ratifies the Budapest Convention on cybercrime",
               "Japan deposited its instrument of ratification of the Council of Europe Convention on Cybercrime in Strasbourg.", "CoE", DAY),
        Report(12, "Brazil accedes to the Budapest Convention on cybercrime",
               "Brazil deposited its instrument of accession to the Council of Europe Convention on Cybercrime in Strasbourg.", "CoE", DAY + timedelta(hours=3))),
    "another takedown by the same agencies": (
        Report(13, "Europol and FBI take down the Qakbot botnet",
               "Police coordinated by Europol and the FBI seized servers of the Qakbot botnet used by ransomware gangs and removed the malware from infected computers.", "Wire A", DAY),
        Report(14, "Europol and FBI take down the Pikabot botnet",
               "Police coordinated by Europol and the FBI seized servers of the Pikabot botnet used by ransomware gangs and removed the malware from infected computers.", "Wire B", DAY + timedelta(hours=2))),
    "the next session of the same working group": (
        Report(15, "UN working group on ICT security opens its fifth session",
               "Delegations at the Open-Ended Working Group in New York discussed norms, confidence-building measures and a points-of-contact directory at the fifth substantive session.", "Digwatch", DAY),
        Report(16, "UN working group on ICT security opens its sixth session",
               "Delegations at the Open-Ended Working Group in New York discussed norms, confidence-building measures and a points-of-contact directory at the sixth substantive session.", "Digwatch", DAY + timedelta(days=1))),
    "the same body's report in another year": (
        Report(17, "UN experts agree report on norms of state behaviour",
               "The Group of Governmental Experts adopted its 2015 consensus report on responsible state behaviour in cyberspace and international law.", "Wire A", DAY),
        Report(18, "UN experts agree report on norms of state behaviour",
               "The Group of Governmental Experts adopted its 2021 consensus report on responsible state behaviour in cyberspace and international law.", "Wire B", DAY + timedelta(hours=1))),
    "the same event reported weeks later": (
        Report(19, "Costa Rica declares emergency over Conti ransomware",
               "President Rodrigo Chaves declared a national emergency after the Conti ransomware gang crippled the finance ministry's tax and customs systems.", "Wire A", DAY),
        Report(20, "Costa Rica declares emergency over Conti ransomware attack",
               "President Rodrigo Chaves declared a national emergency after the Conti ransomware gang crippled the finance ministry's tax and customs systems.", "Wire B", DAY + timedelta(days=20))),
}


def story_of(stories, report_id):
    return next(s for s in stories if report_id in {r.id for r in s.reports})


@pytest.mark.parametrize("pair", SAME_EVENT, ids=["takedown", "treaty"])
def test_two_wordings_of_one_event_are_one_story(pair):
    a, b = pair
    stories = group([a, b, *FILLER])
    story = story_of(stories, a.id)
    assert {r.id for r in story.reports} == {a.id, b.id}
    assert set(story.sources) == {a.source, b.source}
    assert len(stories) == 1 + len(FILLER)


@pytest.mark.parametrize("kind", list(TRAPS))
def test_different_events_with_the_same_actors_stay_apart(kind):
    a, b = TRAPS[kind]
    stories = group([a, b, *FILLER])
    assert story_of(stories, a.id) is not story_of(stories, b.id)


def test_lead_is_the_longest_report_then_the_earliest():
    a, b = SAME_EVENT[1]
    longer = b if len(b.text) > len(a.text) else a
    story = story_of(group([a, b, *FILLER]), a.id)
    assert story.lead.id == longer.id
    assert [r.id for r in story.also] == [({a.id, b.id} - {longer.id}).pop()]


def test_a_chain_does_not_join_two_events():
    """A report that resembles two different events joins at most one of them."""
    japan, brazil = TRAPS["another country accedes to the same convention"]
    both = Report(30, "Japan and Brazil join the Budapest Convention on cybercrime",
                  "Japan ratified and Brazil acceded to the Council of Europe Convention on Cybercrime in Strasbourg.", "Wire C", DAY)
    stories = group([japan, brazil, both, *FILLER])
    assert story_of(stories, japan.id) is not story_of(stories, brazil.id)


def test_explain_names_shared_signals_and_the_veto():
    a, b = SAME_EVENT[0]
    japan, brazil = TRAPS["another country accedes to the same convention"]
    reports = [a, b, japan, brazil, *FILLER]
    why = explain(a.id, reports)
    assert [g["id"] for g in why["grouped_with"]] == [b.id]
    assert "emotet" in why["grouped_with"][0]["shared"]
    apart = explain(japan.id, reports)
    assert apart["grouped_with"] == []
    assert apart["nearest_not_grouped"]["id"] == brazil.id
    assert "countries" in apart["nearest_not_grouped"]["reason"]


def test_explain_unknown_id_raises_key_error():
    with pytest.raises(KeyError):
        explain(999, FILLER)


def test_no_reports_no_stories():
    assert group([]) == []


# Different events told in the same words but for what sets them apart: each kind of veto, one case each.
VETOES = {
    "different sums of money": (
        Report(41, "Colonial Pipeline paid hackers nearly $5 million in ransom",
               "Colonial Pipeline paid the DarkSide gang a ransom in bitcoin to restore its fuel network, people familiar with the payment said.", "Wire A", DAY),
        Report(42, "Justice Department seizes $2.3 million in ransom paid to DarkSide",
               "Investigators recovered most of the bitcoin ransom Colonial Pipeline paid to the DarkSide gang, the Justice Department said.", "Wire B", DAY + timedelta(hours=4))),
    "a later development": (
        Report(43, "Europol takes control of the Emotet botnet",
               "Police coordinated by Europol seized the servers of the Emotet botnet, which gangs rented to install ransomware.", "Wire A", DAY),
        Report(44, "Emotet botnet is back, rebuilt with help from TrickBot",
               "Researchers saw the Emotet botnet, whose servers police coordinated by Europol seized, install itself again through TrickBot.", "Wire B", DAY + timedelta(hours=6))),
    "a failure": (
        Report(45, "UN Group of Governmental Experts agrees consensus report",
               "The UN Group of Governmental Experts on ICT security adopted a consensus report on responsible state behaviour.", "Wire A", DAY),
        Report(46, "UN Group of Governmental Experts ends without consensus report",
               "The UN Group of Governmental Experts on ICT security could not agree a consensus report on responsible state behaviour.", "Wire B", DAY + timedelta(hours=2))),
    "a response and an attack": (
        Report(47, "Meat supplier JBS hit by REvil ransomware",
               "JBS, the world's largest meat processor, halted plants after the REvil ransomware gang encrypted its systems.", "Wire A", DAY),
        Report(48, "REvil ransomware gang members arrested, FSB says",
               "The FSB said it arrested members of the REvil ransomware gang behind attacks on JBS and other companies.", "Wire B", DAY + timedelta(hours=8))),
    "acronyms the other does not spell out": (
        Report(49, "UN OEWG adopts its final report by consensus",
               "The UN working group on ICT security, the OEWG, adopted its final report by consensus in New York.", "Wire A", DAY),
        Report(50, "UN GGE adopts its final report by consensus",
               "The UN experts on ICT security, the GGE, adopted its final report by consensus in New York.", "Wire B", DAY + timedelta(hours=3))),
    "heads of different countries": (
        Report(51, "Obama and Xi agree not to steal trade secrets online",
               "President Barack Obama and Xi Jinping agreed that neither government will conduct cyber theft of commercial secrets.", "Wire A", DAY),
        Report(52, "UK and China agree not to steal trade secrets online",
               "Britain and China agreed that neither government will conduct cyber theft of commercial secrets, Xi Jinping said in London.", "Wire B", DAY + timedelta(hours=3))),
}


@pytest.mark.parametrize("kind", list(VETOES))
def test_a_veto_keeps_two_events_apart(kind):
    a, b = VETOES[kind]
    stories = group([a, b, *FILLER])
    assert story_of(stories, a.id) is not story_of(stories, b.id)
    assert explain(a.id, [a, b, *FILLER])["nearest_not_grouped"]["id"] == b.id


def test_an_acronym_the_other_spells_out_does_not_veto():
    a = Report(53, "UN GGE adopts its final report by consensus",
               "The GGE on ICT security adopted its final report on responsible state behaviour by consensus in New York.", "Wire A", DAY)
    b = Report(54, "Group of Governmental Experts agrees final report",
               "The UN Group of Governmental Experts adopted its final report on responsible state behaviour by consensus in New York.", "Wire B", DAY + timedelta(hours=3))
    story = story_of(group([a, b, *FILLER]), a.id)
    assert {r.id for r in story.reports} == {a.id, b.id}
