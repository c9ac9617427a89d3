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
