"""The state in PostgreSQL, on a real throwaway cluster (tests/pgcluster.py): what spans processes and machines.

Two daemons on one database, the first SIGKILLed mid-job; four `briefings send`
processes on 1,000 deliveries, one SIGKILLed mid-send; two processes migrating
at once; `briefings state copy` both ways; `briefings check` on a database that
is there and one that is not.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from conftest import BACKEND, db_rows, fixture_feed, free_port, mail_config, write_config
from test_daemon import DaemonProcess, schedule_table

BRIEFINGS = [sys.executable, "-m", "briefings"]
TAKEOVER_BOUND = 5  # seconds from a daemon's death to the standby's taking over (the poll is 1 s)


@pytest.fixture
def on_postgres(pg_url):
    BACKEND["url"] = pg_url
    yield pg_url
    BACKEND["url"] = ""


def client_pid_of_claim(url: str, recipient: str) -> int:
    """The pid of the `briefings send` whose session claimed recipient's delivery (its application_name)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT a.application_name FROM deliveries d JOIN pg_stat_activity a ON a.pid = d.claimed_by"
            " WHERE d.recipient = %s", (recipient,)).fetchone()
    assert row, f"no live session claims {recipient}"
    return int(row[0].rsplit(" ", 1)[1])


def test_four_senders_one_killed_deliver_every_message_exactly_once(tmp_path, feed_server, smtp_sink, on_postgres):
    sink = smtp_sink()
    recipients = [{"email": f"r{i:04d}@example.org"} for i in range(1000)]
    down = free_port()  # nothing listens: the run stores the outbox of 1,000 and sends nothing
    url = feed_server.add("/norms.rss", fixture_feed("norms.rss"))
    cfg = write_config(tmp_path, [("norms", url)], corpus=None, extra=mail_config(down, recipients))
    made = subprocess.run([*BRIEFINGS, "--config", str(cfg), "run"], capture_output=True, text=True, timeout=300)
    assert made.returncode in (0, 1), made.stderr
    assert db_rows(tmp_path, "SELECT COUNT(*) FROM deliveries WHERE status = 'pending'") == [(1000,)]
    cfg.write_text(cfg.read_text().replace(f"port = {down}", f"port = {sink.port}"))

    victim = "r0400@example.org"
    sink.hang_rcpt = victim  # the sender that reaches it hangs there, mid-send, and is killed
    senders = [subprocess.Popen([*BRIEFINGS, "--config", str(cfg), "send", "--now"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True) for _ in range(4)]
    try:
        assert sink.hang_reached.wait(120), "no sender reached the hanging recipient"
        killed = client_pid_of_claim(on_postgres, victim)
        assert killed in [p.pid for p in senders]
        os.kill(killed, signal.SIGKILL)
        sink.hang_rcpt = None
        codes = {p.pid: p.wait(300) for p in senders}
    finally:
        for p in senders:
            if p.poll() is None:
                p.kill()
    assert codes[killed] == -signal.SIGKILL
    assert all(code == 0 for pid, code in codes.items() if pid != killed), codes
    copies = sink.copies()
    assert len(copies) == 1000 and set(copies.values()) == {1}, {r: n for r, n in copies.items() if n != 1}
    assert db_rows(tmp_path, "SELECT status, COUNT(*) FROM deliveries GROUP BY status") == [("sent", 1000)]


def test_two_daemons_the_first_killed_mid_job_the_second_takes_over(tmp_path, feed_server, smtp_sink, on_postgres):
    sink = smtp_sink()
    url = feed_server.add("/norms.rss", fixture_feed("norms.rss"))
    due = datetime.now(timezone.utc) - timedelta(minutes=2)
    people = [{"email": "ana@example.org"}, {"email": "ben@example.org"}, {"email": "carol@example.org"}]
    extra = mail_config(sink.port, people) + schedule_table(briefing=f'["daily {due:%H:%M}"]', catch_up="true",
                                                         collect="every 2 seconds")
    cfg = write_config(tmp_path, [("norms", url)], corpus=None, extra=extra)
    sink.hang_rcpt = "ben@example.org"  # the first daemon's briefing job hangs mid-send
    first = DaemonProcess(cfg, tmp_path, "first")
    second = None
    try:
        assert sink.hang_reached.wait(60), first.text()
        second = DaemonProcess(cfg, tmp_path, "second")
        second.wait_for("standing by: another briefings daemon runs on this state: the lock is held by process "
                        f"{first.proc.pid} on ")
        first.proc.kill()
        first.proc.wait(10)
        killed_at = time.monotonic()
        sink.hang_rcpt = None
        second.wait_for("taking over", timeout=TAKEOVER_BOUND)
        took = time.monotonic() - killed_at
        # The briefing was stored by the first: the second's collect job sends what it still owes.
        deadline = time.monotonic() + 60
        while len(sink.copies()) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert second.stop()[0] == 0
    finally:
        first.kill()
        if second is not None:
            second.kill()
    assert took < TAKEOVER_BOUND
    assert sink.copies() == {"ana@example.org": 1, "ben@example.org": 1, "carol@example.org": 1}
    assert db_rows(tmp_path, "SELECT COUNT(*) FROM briefings") == [(1,)]
    assert db_rows(tmp_path, "SELECT COUNT(*) FROM entries WHERE briefing_id IS NULL") == [(0,)]


def test_two_processes_starting_at_once_migrate_once(pg_url):
    from briefings.store import Store
    from briefings.store.postgres import SCHEMA_VERSION

    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def open_one():
        try:
            barrier.wait()
            with Store(pg_url) as store:
                assert store.version == SCHEMA_VERSION
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]


@pytest.mark.parametrize("direction", ["sqlite-to-postgresql", "postgresql-to-sqlite"])
def test_state_copy_moves_every_row_and_the_copy_works(tmp_path, feed_server, cli_run, pg_cluster, direction):
    url = feed_server.add("/norms.rss", fixture_feed("norms.rss"))
    source_url = pg_cluster.create_database("source") if direction.startswith("postgresql") else ""
    BACKEND["url"] = source_url
    try:
        cfg = write_config(tmp_path, [("norms", url)])
    finally:
        BACKEND["url"] = ""
    assert cli_run("--config", cfg, "run").exit_code == 0
    taught = cli_run("--config", cfg, "themes", "teach", "https://norms.example.org/2026/osce-hotline", "international-fora")
    assert taught.exit_code == 0, taught.stderr
    target = pg_cluster.create_database("target") if not source_url else str(tmp_path / "moved.sqlite3")
    result = cli_run("--config", cfg, "state", "copy", "--to", target)
    assert result.exit_code == 0, result.stderr
    counts = dict(line.split() for line in result.stdout.splitlines()[1:])
    BACKEND["url"] = source_url
    try:
        source = {t: db_rows(tmp_path, f"SELECT COUNT(*) FROM {t}")[0][0] for t in counts}
    finally:
        BACKEND["url"] = ""
    assert {t: int(n) for t, n in counts.items()} == source
    assert source["entries"] >= 5 and source["briefings"] == 1 and source["feeds"] == 1 and source["corrections"] == 1
    # The copy is a working state: a run on it finds nothing new, and a new id follows the copied ones.
    moved = cfg.read_text().replace(f'url = "{source_url}"', f'url = "{target if not source_url else ""}"')
    if source_url:
        moved = moved.replace('path = "state/briefings.sqlite3"', f'path = "{target}"')
    cfg.write_text(moved)
    again = cli_run("--config", cfg, "run")
    assert again.exit_code == 0 and "Nothing new since the last briefing" in again.stderr, again.stderr
    twice = cli_run("--config", cfg, "state", "copy", "--to", target)
    assert twice.exit_code != 0 and ("not empty" in twice.stderr or "exists already" in twice.stderr), twice.stderr


def test_check_names_the_store_and_its_version_and_an_unreachable_one_in_one_line(tmp_path, cli_run, pg_url):
    cfg = write_config(tmp_path, corpus=None, extra="")
    cfg.write_text(cfg.read_text().replace('url = ""', f'url = "{pg_url}"'))
    assert cli_run("--config", cfg, "collect").exit_code == 0
    host_db = pg_url.split("@", 1)[1]
    result = cli_run("--config", cfg, "check")
    from briefings.store.postgres import SCHEMA_VERSION

    assert f"state:        PostgreSQL at {host_db}, schema version {SCHEMA_VERSION}" in result.stdout
    port = free_port()
    cfg.write_text(cfg.read_text().replace(f'url = "{pg_url}"', f'url = "postgresql://briefings@127.0.0.1:{port}/x"'))
    down = cli_run("--config", cfg, "check")
    assert down.exit_code == 1
    (line,) = [l for l in down.stderr.splitlines() if l.startswith("briefings:")]
    assert line == f"briefings: PostgreSQL at 127.0.0.1:{port}/x cannot be reached: Connection refused", down.stderr
    assert "Traceback" not in down.stderr


# -- entries on PostgreSQL: stored by batch, and once when two collectors race ---------------------------------

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)


def _story(n: int, source: str, *, key: str = "", link: str = "", text: str = ""):
    from briefings.models import Entry

    return Entry(key=key or f"{source}:{n}", source_kind="feed", source_name=source,
                 title=f"Norms of state behaviour, part {n}", link=link or f"https://{source}.example.org/{n}",
                 summary_html=text or f"<p>Story {n} of the week says what the group agreed on {source}.</p>")


def _text(entry) -> str:
    return entry.summary_html


def statements_sent(store) -> list[str]:
    """Every statement the store's connection sends from now on (executemany: one per row), recorded as it is
    passed on to the database."""
    connection, sent = store.db.connection, []
    execute, executemany = connection.execute, connection.executemany

    def counted_execute(statement, params=()):
        sent.append(statement)
        return execute(statement, params)

    def counted_executemany(statement, rows):
        rows = list(rows)
        sent.extend([statement] * len(rows))
        return executemany(statement, rows)

    connection.execute, connection.executemany = counted_execute, counted_executemany
    return sent


@pytest.mark.parametrize("count", [50, 500])
def test_a_batch_of_entries_is_stored_in_a_bounded_number_of_statements_with_ids_from_the_database(pg_url, count):
    from briefings.store import Store

    batch = [_story(n, "alpha") for n in range(count)]
    batch.append(_story(0, "beta", link="https://www.alpha.example.org/0?utm_source=feed"))  # a twin of story 0
    batch.append(_story(1, "alpha"))  # story 1's key again
    with Store(pg_url) as store:
        sent = statements_sent(store)
        new = store.entries.add(batch, now=NOW, text_of=_text)
        stored = dict(store.db.all("SELECT key, id FROM entries"))
        sources = [tuple(r) for r in store.db.all("SELECT entry_id, source_name, key FROM entry_sources")]
    assert len(sent) <= 12, f"{len(sent)} statements for {count} entries"
    assert [e.key for e in new] == [f"alpha:{n}" for n in range(count)]
    assert {e.key: e.id for e in new} == stored
    assert sources == [(stored["alpha:0"], "beta", "beta:0")]


def _race(url: str, batches: list[list]) -> list[list]:
    """Each batch stored by a store of its own (its own session), all started together; the new entries of each."""
    from briefings.store import Store

    barrier = threading.Barrier(len(batches))
    results: list[list] = [[] for _ in batches]
    errors: list[BaseException] = []

    def collect(i: int) -> None:
        try:
            with Store(url) as store:
                barrier.wait(30)
                results[i] = store.entries.add(batches[i], now=NOW, text_of=_text)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=collect, args=(i,)) for i in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    return results


def _overlapping(overlap: str, round_: int, count: int) -> tuple[list, list, set[str]]:
    """Two collectors' batches holding the same count stories (the second in the other order), and the sources
    each story should list."""
    first = [_story(round_ * 1000 + n, "alpha") for n in range(count)]
    if overlap == "same key":  # the same feed, collected by both
        second = [_story(round_ * 1000 + n, "alpha") for n in range(count)]
        return first, second[::-1], {"alpha"}
    if overlap == "same canonical link":
        second = [_story(round_ * 1000 + n, "beta", link=f"https://www.alpha.example.org/{round_ * 1000 + n}?utm_medium=rss",
                         text=f"<p>Another feed's words on part {round_ * 1000 + n}, differently put.</p>")
                  for n in range(count)]
    else:  # the same title and opening words under another link
        second = [_story(round_ * 1000 + n, "beta", text=e.summary_html) for n, e in enumerate(first)]
    return first, second[::-1], {"alpha", "beta"}


@pytest.mark.parametrize("overlap", ["same key", "same canonical link", "same title and opening words"])
def test_two_collectors_racing_store_every_story_once_and_record_every_source(pg_url, overlap):
    from briefings.store import Store

    count, expected = 40, {}
    for round_ in range(4):  # the stores race in each round; the later batch runs its stories in the other order
        first, second, sources = _overlapping(overlap, round_, count)
        new_first, new_second = _race(pg_url, [first, second])
        ids = [e.id for e in new_first + new_second]
        assert len(ids) == count and len(set(ids)) == count, (len(new_first), len(new_second))
        expected.update({e.title: sources for e in first})
    with Store(pg_url) as store:
        stored = store.entries.pending()
    assert len(stored) == len(expected)
    assert {e.title: {name for name, _ in e.sources} for e, _ in stored} == expected
    assert all(len(e.sources) == len(expected[e.title]) for e, _ in stored)


def test_a_database_of_schema_1_with_twins_migrates_keeping_every_row_and_the_first_keeps_the_identity(pg_url):
    from briefings.store import Store
    from briefings.store.postgres import MIGRATIONS, SCHEMA_VERSION
    from briefings.store.schema import _statements

    with psycopg.connect(pg_url, autocommit=True) as conn:
        for statement in _statements(MIGRATIONS[0]):
            conn.execute(statement)
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (1)")
        for key, canon, fp in [("a", "c1", "f1"), ("b", "c1", "f2"), ("c", "c3", "f1"), ("d", None, None)]:
            conn.execute("INSERT INTO entries (key, source_kind, source_name, title, canonical_link, fingerprint,"
                         " first_seen) VALUES (%s, 'feed', 'norms', %s, %s, %s, '2026-11-01T00:00:00+00:00')",
                         (key, f"title {key}", canon, fp))
    with Store(pg_url) as store:
        assert store.version == SCHEMA_VERSION > 1
        rows = [tuple(r) for r in store.db.all("SELECT key, canonical_link, fingerprint FROM entries ORDER BY key")]
        from briefings.models import Entry

        again = Entry(key="e", source_kind="feed", source_name="other", title="t", link="", canonical="c1")
        assert store.entries.add([again], now=NOW, text_of=_text) == []
        joined = store.db.one("SELECT e.key FROM entry_sources s JOIN entries e ON e.id = s.entry_id")[0]
    assert rows == [("a", "c1", "f1"), ("b", None, "f2"), ("c", "c3", None), ("d", None, None)]
    assert joined == "a"
    with psycopg.connect(pg_url) as conn, pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute("UPDATE entries SET fingerprint = 'f1' WHERE key = 'b'")


# -- the daemon's lock session lost, and a takeover's catch-up -----------------------------------------------

LOCK_LOSS_BOUND = 5  # seconds from the lock session's end to the daemon's noticing it, between jobs (it looks every 1 s)


def test_a_daemon_whose_lock_session_ends_runs_no_job_until_it_holds_the_lock_again(tmp_path, feed_server, on_postgres):
    from briefings.store.postgres import DAEMON_LOCK, LOCK_SPACE

    url = feed_server.add("/norms.rss", fixture_feed("norms.rss"))
    cfg = write_config(tmp_path, [("norms", url)], corpus=None, extra=schedule_table(collect="every 2 seconds"))
    daemon = DaemonProcess(cfg, tmp_path)
    try:
        daemon.wait_for("job collect done", timeout=60)
        with psycopg.connect(on_postgres, autocommit=True) as conn:
            (pid,) = conn.execute("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = %s"
                                  " AND objid = %s AND granted", (LOCK_SPACE, DAEMON_LOCK)).fetchone()
            assert conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
            ended = time.monotonic()
            # This session takes the lock the moment it is free, before the daemon can take it back.
            while not conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (LOCK_SPACE, DAEMON_LOCK)).fetchone()[0]:
                assert time.monotonic() - ended < 5, "the terminated session's lock stayed taken"
                time.sleep(0.01)
            text = daemon.wait_for("lost the daemon lock: its session on PostgreSQL at ", timeout=30)
            noticed = time.monotonic() - ended
            daemon.wait_for("standing by: another briefings daemon runs on this state")
            done_then = daemon.text().count("job collect done")
            time.sleep(5)  # two collect jobs were due meanwhile
            done_while_lost = daemon.text().count("job collect done") - done_then
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_SPACE, DAEMON_LOCK))
        daemon.wait_for("holds the daemon lock again: jobs run", timeout=10)
        daemon.wait_for("job collect done", timeout=20, count=done_then + 1)
        assert daemon.stop()[0] == 0
    finally:
        daemon.kill()
    assert noticed < LOCK_LOSS_BOUND, text
    assert done_while_lost == 0


def test_a_standby_taking_over_mid_send_sends_what_is_owed_and_makes_no_second_briefing(
        tmp_path, feed_server, smtp_sink, on_postgres):
    sink = smtp_sink()
    url = feed_server.add("/norms.rss", fixture_feed("norms.rss"))
    due = datetime.now(timezone.utc) - timedelta(minutes=2)
    people = [{"email": "ana@example.org"}, {"email": "ben@example.org"}, {"email": "carol@example.org"}]
    extra = mail_config(sink.port, people) + schedule_table(briefing=f'["daily {due:%H:%M}"]', catch_up="true")
    cfg = write_config(tmp_path, [("norms", url)], corpus=None, extra=extra)
    from conftest import state_store

    with state_store(tmp_path) as store:  # yesterday's briefing run was done: today's is the one owed
        store.meta.set_time("last_briefing_run", due - timedelta(days=1))
    sink.hang_rcpt = "ben@example.org"  # the first daemon's catch-up hangs mid-send
    first = DaemonProcess(cfg, tmp_path, "first")
    second = None
    try:
        assert sink.hang_reached.wait(60), first.text()
        second = DaemonProcess(cfg, tmp_path, "second")
        second.wait_for("standing by: another briefings daemon runs on this state")
        feed_server.add("/norms.rss", fixture_feed("news.atom"))  # new entries came out since
        first.proc.kill()
        first.proc.wait(10)
        sink.hang_rcpt = None
        second.wait_for("taking over", timeout=TAKEOVER_BOUND)
        second.wait_for(r"job (briefing|outbox) done", timeout=60)
        assert second.stop()[0] == 0
    finally:
        first.kill()
        if second is not None:
            second.kill()
    assert db_rows(tmp_path, "SELECT COUNT(*) FROM briefings") == [(1,)]
    assert sink.copies() == {"ana@example.org": 1, "ben@example.org": 1, "carol@example.org": 1}
    assert db_rows(tmp_path, "SELECT status, COUNT(*) FROM deliveries GROUP BY status") == [("sent", 3)]
