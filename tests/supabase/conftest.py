"""A throwaway PostgreSQL cluster with the Supabase stand-in (shim.sql) applied.

The cluster listens only on a unix socket in its own temp dir, runs with fsync off, and is removed
at the end of the session. Statements go through ``psql`` (it ships with the server binaries, so
the tests need no database driver). Missing binaries fail the tests, never skip them.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

HERE = Path(__file__).resolve().parent
SHIM_SQL = HERE / "shim.sql"

NEEDED = ("initdb", "pg_ctl", "postgres", "psql")
INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl, postgres, psql) not found: install them "
    "(Debian/Ubuntu: `apt-get install -y postgresql-15`, or `postgresql` for the distro's "
    "version) or point PG_BINDIR at their directory."
)


def _pg_bindir() -> Path:
    """Directory holding initdb/pg_ctl/postgres/psql: $PG_BINDIR, pg_config, Debian's layout, PATH."""
    candidates: list[Path] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(Path(os.environ["PG_BINDIR"]))
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            candidates.append(Path(out.stdout.strip()))

    def version(p: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", p.parent.name)) or (0,)

    # Debian keeps the server binaries off PATH, one directory per major version: newest first.
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    if shutil.which("initdb"):
        candidates.append(Path(shutil.which("initdb") or "").parent)
    for d in candidates:
        if all((d / name).is_file() for name in NEEDED):
            return d
    pytest.fail(INSTALL_HINT, pytrace=False)


class PgError(Exception):
    """A statement failed; ``sqlstate`` is the SQLSTATE code (42501 = insufficient privilege)."""

    def __init__(self, sqlstate: str, message: str, stderr: str) -> None:
        super().__init__(f"{sqlstate}: {message}\n{stderr}")
        self.sqlstate = sqlstate
        self.message = message


@dataclass(frozen=True)
class Pg:
    """Runs SQL scripts through psql against the test cluster."""

    Error: ClassVar[type[PgError]] = PgError  # for pytest.raises(pg.Error) in test modules

    psql: Path
    socket_dir: Path
    port: int

    def run(self, sql: str, *, user: str = "supabase_admin") -> list[list[str]]:
        """Run ``sql`` (psql script, autocommit per statement unless it says ``begin``).

        Returns the rows of every query in it ('|'-separated, header-less); raises PgError on the
        first error (ON_ERROR_STOP), parsing the SQLSTATE from psql's verbose error line.
        """
        return self._psql(["-f", "-"], user=user, stdin="\\set VERBOSITY verbose\n" + sql)

    def run_file(self, path: Path, *, user: str) -> None:
        """Apply a .sql file the way `psql -f` does in a real project."""
        self._psql(["-f", str(path)], user=user, stdin=None)

    def as_role(self, sql: str, *, role: str, sub: str | None = None, setup: str = "") -> list[list[str]]:
        """Run ``sql`` as an API role with a JWT for ``sub``, the way PostgREST and Storage do.

        One transaction, always rolled back so tests stay independent: ``setup`` runs first as
        the superuser (fixture rows), then ``set local role`` + ``request.jwt.claims``, then ``sql``.
        """
        claims = json.dumps({"sub": sub, "role": role} if sub else {"role": role})
        script = (
            "begin;\n"
            f"{setup}\n"
            # \gset swallows set_config's result row so only the test's own queries print.
            f"select set_config('request.jwt.claims', '{claims}', true) \\gset\n"
            f"set local role {role};\n"
            f"{sql}\n"
            "rollback;\n"
        )
        return self.run(script)

    def _psql(self, args: list[str], *, user: str, stdin: str | None) -> list[list[str]]:
        cmd = [
            str(self.psql), "-X", "-q", "-A", "-t", "-F", "|",
            "-v", "ON_ERROR_STOP=1",
            "-h", str(self.socket_dir), "-p", str(self.port), "-U", user, "-d", "postgres",
            *args,
        ]
        env = {**os.environ, "PGOPTIONS": "-c client_min_messages=warning", "PGCONNECT_TIMEOUT": "10"}
        for var in ("PGPASSWORD", "PGSERVICE", "PGSSLMODE", "PGDATABASE", "PGUSER", "PGHOST"):
            env.pop(var, None)
        proc = subprocess.run(
            cmd, input=stdin, capture_output=True, text=True, env=env, timeout=60, check=False
        )
        if proc.returncode != 0:
            m = re.search(r"ERROR:\s+([0-9A-Z]{5}):\s+(.*)", proc.stderr)
            if m:
                raise PgError(m.group(1), m.group(2), proc.stderr)
            raise RuntimeError(f"psql failed ({proc.returncode}): {proc.stderr}")
        return [line.split("|") for line in proc.stdout.splitlines() if line]


def _free_port() -> int:
    """A port number nobody uses now; it only names the socket file, nothing listens on TCP."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Pg]:
    """A fresh cluster with shim.sql applied (bootstrap superuser ``supabase_admin``, as on
    Supabase), for this session."""
    bindir = _pg_bindir()
    # initdb refuses to run as root: as root, the cluster belongs to the `postgres` OS user
    # (which the Debian package creates) and its own temp dir (pytest's tmp is root-only).
    as_postgres: list[str] = []
    tmp = Path(tempfile.mkdtemp(prefix="sora-pg-"))
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(tmp)
            pytest.fail("running as root needs the `postgres` OS user to own the test cluster. "
                        + INSTALL_HINT, pytrace=False)
        os.chown(tmp, pw.pw_uid, pw.pw_gid)
        runuser = shutil.which("runuser")
        as_postgres = (
            [runuser, "-u", "postgres", "--"] if runuser else ["su", "postgres", "-s", "/bin/sh", "-c"]
        )
    data, log = tmp / "data", tmp / "postgres.log"

    def as_owner(*cmd: str | Path) -> subprocess.CompletedProcess[str]:
        argv = [str(c) for c in cmd]
        if as_postgres[-1:] == ["-c"]:  # su takes one shell command line
            argv = [shlex.join(argv)]
        return subprocess.run(
            [*as_postgres, *argv], cwd=tmp, capture_output=True, text=True, timeout=120, check=False
        )

    port = _free_port()
    pg_ctl = bindir / "pg_ctl"
    started = False
    try:
        out = as_owner(bindir / "initdb", "-D", data, "-U", "supabase_admin", "--auth=trust",
                       "-E", "UTF8", "--locale=C", "--no-sync")
        assert out.returncode == 0, f"initdb failed:\n{out.stdout}\n{out.stderr}"
        # Settings in the conf file rather than `pg_ctl -o`, which goes through a shell.
        with open(data / "postgresql.conf", "a") as conf:
            conf.write(
                "\nlisten_addresses = ''\n"
                f"unix_socket_directories = '{tmp}'\n"
                f"port = {port}\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "shared_buffers = 16MB\nmax_connections = 20\n"
            )
        out = as_owner(pg_ctl, "start", "-w", "-t", "60", "-D", data, "-l", log)
        started = out.returncode == 0
        assert started, f"pg_ctl start failed:\n{out.stdout}\n{out.stderr}\n{_tail(log)}"
        pg = Pg(psql=bindir / "psql", socket_dir=tmp, port=port)
        pg.run_file(SHIM_SQL, user="supabase_admin")
        yield pg
    finally:
        if started:
            out = as_owner(pg_ctl, "stop", "-w", "-t", "30", "-m", "fast", "-D", data)
            if out.returncode != 0:
                as_owner(pg_ctl, "stop", "-w", "-m", "immediate", "-D", data)
        shutil.rmtree(tmp, ignore_errors=True)


def _tail(path: Path, n: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""
