"""Storage faults as a user meets them: `briefings run` in a real subprocess, on a real SQLite file and archive.

A damaged state file, a read-only state or archive folder, a full disk: each ends in exit 1 and one line
naming the file, what is wrong and what to do, with no traceback; once the fault is gone, the next run
finishes the work (every archive file written, every message sent once). The faults are real: bytes
written over the file, a read-only bind mount (root) or chmod (others), a file-size limit
(RLIMIT_FSIZE, with SIGXFSZ ignored, so writes fail with EFBIG), and a tiny tmpfs (root, in a private
mount namespace) for a true ENOSPC.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
from contextlib import closing
from functools import cache
from pathlib import Path

import pytest

from conftest import FeedServer, SmtpSink, fixture_feed, mail_config, write_config

RECIPIENT = {"email": "ana@example.org", "name": "Ana Diplomat"}


@cache
def can_mount() -> bool:
    """Root here can make a private mount namespace (unshare) and mount in it."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--mount", "sh", "-c", "mount -t tmpfs -o size=4k tmpfs /mnt"],
                           capture_output=True)
    return probe.returncode == 0


# A shell prefix: run the command with FOLDER read-only (a read-only bind of itself, in a private namespace).
READ_ONLY = 'mount --bind -o ro "$0" "$0" || exit 97; exec "$@"'
# Run the command with FOLDER on a tmpfs holding its files and SPARE more bytes; copy the files back after,
# as when the full disk is freed.
TINY_DISK = textwrap.dedent("""\
    folder="$0"; spare="$1"; shift
    keep=$(mktemp -d) && cp -a "$folder"/. "$keep"/ || exit 97
    used=$(du -s -B1 "$folder" | cut -f1)  # in whole blocks, as tmpfs counts them
    mount -t tmpfs -o size=$(( used + spare + 65536 )) tmpfs "$folder" || exit 97
    cp -a "$keep"/. "$folder"/ || exit 97
    # Fill it up to SPARE bytes free.
    free=$(df -B1 --output=avail "$folder" | tail -1)
    [ "$free" -gt "$spare" ] && head -c $(( free - spare )) /dev/zero > "$folder/.filler" 2>/dev/null
    "$@"; rc=$?
    rm -f "$folder/.filler"; rm -rf "$keep"/*; cp -a "$folder"/. "$keep"/
    umount "$folder" && find "$folder" -mindepth 1 -delete && cp -a "$keep"/. "$folder"/
    rm -rf "$keep"; exit $rc
""")


def briefings(cfg: Path, *args: str, prefix: list[str] = (), fsize: int | None = None, umask: int | None = None,
              python: list[str] | None = None) -> subprocess.CompletedProcess:
    def child():
        if fsize is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # so a write past the limit fails with EFBIG
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        if umask is not None:
            os.umask(umask)

    env = {k: v for k, v in os.environ.items() if k != "BRIEFINGS_CONFIG"}
    cmd = [*prefix, sys.executable, *(python or ["-m", "briefings"]), "--config", str(cfg), *(args or ["run"])]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, preexec_fn=child)
    assert done.returncode != 97, f"the fault could not be set up: {done.stderr}"
    return done


@pytest.fixture(scope="module")
def served():
    """One feed server and one SMTP sink for the module: /first and /second carry different entries."""
    server, sink = FeedServer(), SmtpSink()
    server.add("/first", fixture_feed("norms.rss"))
    server.add("/second", fixture_feed("news.atom"), content_type="application/atom+xml")
    yield server, sink
    sink.close()
    server.close()


def setup(folder: Path, served) -> Path:
    server, sink = served
    return write_config(folder, [("Norms Watch", server.url("/first"))], corpus=None,
                        extra=mail_config(sink.port, [RECIPIENT]))


def new_entries(cfg: Path) -> None:
    """The feed now carries other entries: the next run owes a new briefing."""
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("/first", "/second"), encoding="utf-8")


@pytest.fixture(scope="module")
def after_one_run(tmp_path_factory, served):
    """A folder after one good run: one briefing stored, written and e-mailed."""
    folder = tmp_path_factory.mktemp("after-one-run")
    first = briefings(setup(folder, served))
    assert first.returncode == 0, first.stderr
    return folder


@pytest.fixture
def one_briefing(tmp_path, after_one_run, served):
    """A copy of after_one_run in tmp_path; returns (config, sent): sent() counts this test's messages."""
    shutil.copytree(after_one_run, tmp_path, dirs_exist_ok=True)
    assert_archive_complete(tmp_path, 1)
    sink = served[1]
    start = len(sink.messages)
    return tmp_path / "config.toml", lambda: sum(rcpts.count(RECIPIENT["email"]) for rcpts, _ in sink.messages[start:])


def briefing_pages(tmp_path) -> list[Path]:
    return sorted(p for p in (tmp_path / "archive").glob("*.html") if p.name != "index.html")


def stored_briefings(tmp_path) -> list[dict]:
    with closing(sqlite3.connect(tmp_path / "state" / "briefings.sqlite3")) as db:
        return [{"slug": slug, "theme_counts": themes}
                for slug, themes in db.execute("SELECT slug, theme_counts FROM briefings ORDER BY id")]


def assert_archive_complete(tmp_path, count: int) -> None:
    """count briefings stored, each with its page and text, listed in index.html, with its themes' pages."""
    import json

    archive = tmp_path / "archive"
    stored = stored_briefings(tmp_path)
    assert len(stored) == count
    index = (archive / "index.html").read_text(encoding="utf-8")
    for row in stored:
        assert (archive / f"{row['slug']}.html").is_file(), row["slug"]
        assert (archive / f"{row['slug']}.txt").is_file(), row["slug"]
        assert f'href="{row["slug"]}.html"' in index, row["slug"]
        for theme in json.loads(row["theme_counts"]):
            page = archive / "themes" / f"{theme}.html"
            assert page.is_file(), page
            assert f"{row['slug']}.html" in page.read_text(encoding="utf-8"), (page, row["slug"])


def assert_one_line(done, path: Path, *words: str) -> None:
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert str(path) in lines[0], lines[0]
    for word in words:
        assert word in lines[0], lines[0]


# -- the faults ------------------------------------------------------------------------------------------
# Each: prepare(tmp_path) -> (what the faulty run needs, how to remove the fault); and what the line says.


def garbage(tmp_path):
    state = tmp_path / "state" / "briefings.sqlite3"
    backup = state.read_bytes()
    state.write_bytes(b"this is not a database, it is a note someone saved over it\n" * 200)
    return {}, lambda: state.write_bytes(backup)


def truncated(tmp_path):
    state = tmp_path / "state" / "briefings.sqlite3"
    backup = state.read_bytes()
    state.write_bytes(backup[: len(backup) // 2])
    return {}, lambda: state.write_bytes(backup)


def corrupted_page(tmp_path):
    """The root page of the entries table, in the middle of the file, overwritten."""
    state = tmp_path / "state" / "briefings.sqlite3"
    backup = state.read_bytes()
    db = sqlite3.connect(state)
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'entries'").fetchone()[0]
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.close()
    assert 1 < root < pages
    data = bytearray(backup)
    data[(root - 1) * page_size : root * page_size] = bytes(range(256)) * (page_size // 256)
    state.write_bytes(bytes(data))
    return {}, lambda: state.write_bytes(backup)


def read_only(folder):
    def prepare(tmp_path):
        target = tmp_path / folder
        target.mkdir(exist_ok=True)
        if os.geteuid() != 0:
            target.chmod(0o555)
            return {}, lambda: target.chmod(0o755)
        if not can_mount():
            pytest.skip("root ignores chmod, and no private mount namespace can be made here for a read-only bind")
        return {"prefix": ["unshare", "--mount", "sh", "-c", READ_ONLY, str(target)]}, lambda: None

    return prepare


def file_size_limit(tmp_path):
    # Any write past 8 KB fails (EFBIG): the state's write-ahead log grows past it at the first new entries.
    return {"fsize": 8192}, lambda: None


def tiny_disk(folder, spare):
    def prepare(tmp_path):
        if not can_mount():
            pytest.skip("a full disk (a tiny tmpfs) needs root and a private mount namespace")
        target = tmp_path / folder
        target.mkdir(exist_ok=True)
        return {"prefix": ["unshare", "--mount", "sh", "-c", TINY_DISK, str(target), str(spare)]}, lambda: None

    return prepare


def folder_in_the_way(tmp_path):
    """A folder where archive/index.html should be (EISDIR at the rename)."""
    index = tmp_path / "archive" / "index.html"
    index.unlink()
    index.mkdir()
    return {}, index.rmdir


def file_in_the_way(tmp_path):
    """A file where the archive folder should be (EEXIST at the mkdir of its folder)."""
    archive = tmp_path / "archive"
    aside = tmp_path / "archive.aside"
    archive.rename(aside)
    archive.write_text("not a folder\n")

    def remove():
        archive.unlink()
        aside.rename(archive)

    return {}, remove


def folder_as_state(tmp_path):
    """A folder where the state file should be: SQLite cannot open it (SQLITE_CANTOPEN)."""
    state = tmp_path / "state" / "briefings.sqlite3"
    aside = state.with_name("briefings.aside")
    state.rename(aside)
    state.mkdir()

    def remove():
        state.rmdir()
        aside.rename(state)

    return {}, remove


STATE = Path("state") / "briefings.sqlite3"
FAULTS = {
    "garbage state file": (garbage, STATE, ["not an SQLite database", "restore it from a backup"]),
    "truncated state file": (truncated, STATE, ["damaged", "restore it from a backup"]),
    "corrupted page": (corrupted_page, STATE, ["damaged", "restore it from a backup"]),
    "read-only state folder": (read_only("state"), STATE, ["read-only", "fix the permissions"]),
    "state over the file size limit": (file_size_limit, STATE, ["free space"]),
    "full disk for the state": (tiny_disk("state", 4096), STATE, ["no space left", "free space"]),
    "read-only archive folder": (read_only("archive"), Path("archive"), ["read-only", "fix the permissions"]),
    "full disk for the archive": (tiny_disk("archive", 4096), Path("archive"), ["no space left", "free space"]),
    "a folder where index.html goes": (folder_in_the_way, Path("archive") / "index.html", ["is a folder", "move the folder aside"]),
    "a folder where the state file goes": (folder_as_state, STATE, ["is a folder", "set [state] path to a file"]),
    "a file where the archive folder goes": (file_in_the_way, Path("archive"), ["a file stands where a folder", "move that file aside"]),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_storage_fault_is_one_line_and_the_rerun_finishes_the_work(tmp_path, one_briefing, fault):
    prepare, path, words = FAULTS[fault]
    cfg, sent = one_briefing
    new_entries(cfg)

    faulty, remove = prepare(tmp_path)
    done = briefings(cfg, **faulty)
    remove()
    assert_one_line(done, tmp_path / path, *words)
    assert sent() == 0

    rerun = briefings(cfg)
    assert rerun.returncode == 0, rerun.stderr
    assert "Traceback" not in rerun.stderr
    assert "Nothing new" not in rerun.stderr, rerun.stderr
    assert_archive_complete(tmp_path, 2)
    assert len(briefing_pages(tmp_path)) == 2
    assert sent() == 1, "the new briefing e-mailed once"


# -- a run killed while it writes the archive ----------------------------------------------------------

# `python -c` in place of `-m briefings`: the same CLI, killed (SIGKILL) as it is about to write the index,
# after a theme page. Nothing in briefings itself knows of it.
KILLED_IN_WRITE_ARCHIVE = textwrap.dedent("""\
    import os, signal, sys
    import briefings.deliver.disk as disk
    real = disk.write_atomic
    def write_atomic(path, content):
        if path.name == "index.html" and any(p.parent.name == "themes" for p in written):
            os.kill(os.getpid(), signal.SIGKILL)
        real(path, content)
        written.append(path)
    written = []
    disk.write_atomic = write_atomic
    from briefings.cli import main
    sys.argv[0] = "briefings"
    main()
""")


@pytest.mark.parametrize("briefing", ["first", "second"])
@pytest.mark.parametrize("then", ["run", "archive rebuild"])
def test_a_run_killed_in_write_archive_is_finished_by_the_next(tmp_path, served, request, briefing, then):
    if briefing == "first":
        cfg, sink = setup(tmp_path, served), served[1]
        start = len(sink.messages)
        sent = lambda: sum(rcpts.count(RECIPIENT["email"]) for rcpts, _ in sink.messages[start:])  # noqa: E731
    else:
        cfg, sent = request.getfixturevalue("one_briefing")
        new_entries(cfg)
        before = (tmp_path / "archive" / "index.html").read_bytes()
    killed = briefings(cfg, python=["-c", KILLED_IN_WRITE_ARCHIVE])
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    count = 1 if briefing == "first" else 2
    assert len(stored_briefings(tmp_path)) == count
    if briefing == "first":
        assert not (tmp_path / "archive" / "index.html").exists()
    else:
        assert (tmp_path / "archive" / "index.html").read_bytes() == before  # there, but without the new briefing

    rerun = briefings(cfg, *then.split())
    assert rerun.returncode == 0, rerun.stderr
    assert "Nothing new" not in rerun.stderr, rerun.stderr
    assert re.search(r"index\.html$", rerun.stdout + rerun.stderr, re.M), rerun.stderr
    assert_archive_complete(tmp_path, count)
    if then == "run":
        assert sent() == 1, "the briefing the killed run made, e-mailed once"
        again = briefings(cfg)
        assert "Nothing new since the last briefing" in again.stderr, again.stderr  # nothing owed any more


@pytest.mark.parametrize("lost", ["index.html", "a theme page", "a briefing's text", "a briefing's page"])
def test_archive_files_lost_after_a_run_are_written_again(tmp_path, one_briefing, lost):
    cfg, sent = one_briefing
    archive = tmp_path / "archive"
    slug = stored_briefings(tmp_path)[0]["slug"]
    path = {
        "index.html": archive / "index.html",
        "a theme page": sorted((archive / "themes").glob("*.html"))[0],
        "a briefing's text": archive / f"{slug}.txt",
        "a briefing's page": archive / f"{slug}.html",
    }[lost]
    path.unlink()
    rerun = briefings(cfg)
    assert rerun.returncode == 0, rerun.stderr
    assert f"Wrote {path}" in rerun.stderr
    assert "Nothing new" not in rerun.stderr
    assert path.is_file()
    assert_archive_complete(tmp_path, 1)
    assert sent() == 0


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_archive_files_get_the_mode_the_umask_allows(tmp_path, served, umask, mode):
    done = briefings(setup(tmp_path, served), umask=umask)
    assert done.returncode == 0, done.stderr
    files = [p for p in (tmp_path / "archive").rglob("*") if p.is_file()]
    assert len(files) > 3
    assert {p.relative_to(tmp_path).as_posix(): oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {
        p.relative_to(tmp_path).as_posix(): oct(mode) for p in files}
