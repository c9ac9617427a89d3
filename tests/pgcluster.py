"""A throwaway PostgreSQL cluster for the tests: initdb and pg_ctl in a temporary folder, on 127.0.0.1.

The cluster listens on a free port of 127.0.0.1 (and a socket in its own folder),
trusts local connections for its one superuser, and runs without fsync: it lives
for one test session and is stopped and deleted after it. PostgreSQL refuses to
run as root, so under root the cluster runs as ``nobody`` (or the user named by
BRIEFINGS_PG_USER), its folder chowned to that user.

Each test gets its own database, ``CREATE DATABASE ... TEMPLATE template0``
(a copy of an empty template: a few milliseconds).
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

SUPERUSER = "briefings"


class PostgresMissing(Exception):
    """No initdb and pg_ctl on this machine."""


def find_bin() -> Path:
    """The folder holding initdb and pg_ctl: BRIEFINGS_PG_BIN, else PATH, else Debian's /usr/lib/postgresql/<ver>/bin."""
    given = os.environ.get("BRIEFINGS_PG_BIN")
    candidates = [Path(given)] if given else []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(os.path.realpath(on_path)).parent)

    def version(folder: str) -> tuple[int, ...]:
        found = re.search(r"/postgresql/([\d.]+)/bin", folder)
        return tuple(int(p) for p in found.group(1).split(".")) if found else ()

    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)]
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    raise PostgresMissing(
        "PostgreSQL not found (no initdb and pg_ctl on PATH or in /usr/lib/postgresql/*/bin): "
        "run `make system-deps` (apt-get install postgresql) or set BRIEFINGS_PG_BIN"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgCluster:
    def __init__(self, bin_dir: Path | None = None):
        self.bin = bin_dir or find_bin()
        self.folder = Path(tempfile.mkdtemp(prefix="briefings-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "postgres.log"
        self.port = _free_port()
        self.user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            self.user = pwd.getpwnam(os.environ.get("BRIEFINGS_PG_USER", "nobody"))
            os.chown(self.folder, self.user.pw_uid, self.user.pw_gid)
        self._databases = 0

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        kwargs: dict = {}
        if self.user is not None:
            kwargs = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8",
               "HOME": str(self.folder)}
        done = subprocess.run([str(self.bin / args[0]), *args[1:]], capture_output=True, text=True, env=env,
                              cwd=self.folder, **kwargs)
        if check and done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr.strip()}\n{log}")
        return done

    def start(self) -> "PgCluster":
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
                  "--locale=C.UTF-8", "--no-sync", "--no-instructions")
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
                   " -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
                   " -c shared_buffers=64MB")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")
        return self

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def url(self, database: str = "postgres", user: str = SUPERUSER) -> str:
        return f"postgresql://{user}@{self.host}:{self.port}/{database}"

    def create_database(self, hint: str = "test") -> str:
        """A new empty database (named after hint); its URL."""
        import psycopg

        self._databases += 1
        name = f"{re.sub(r'[^a-z0-9]+', '_', hint.lower())[:40].strip('_') or 'test'}_{self._databases}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        import psycopg

        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        try:
            if self.data.exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "30", "stop", check=False)
        finally:
            deadline = time.monotonic() + 5
            while True:
                try:
                    shutil.rmtree(self.folder)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.1)
