"""The SQLite index of a run store: one row per committed run.

``root/index.sqlite`` in WAL mode. Several processes (two notebook kernels, the workers of a
sweep) may use one index at once: each write is one ``BEGIN IMMEDIATE`` transaction, so
writers queue instead of deadlocking, and a busy timeout makes them wait for each other instead
of failing. WAL needs a local file system; do not share one index over NFS between machines.

Reading never creates anything: on a store that was never written, ``read()`` yields None and
the queries answer "no runs".
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

INDEX = "index.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    grp        TEXT,
    method     TEXT,
    model      TEXT,
    data       TEXT,
    created    TEXT NOT NULL,
    status     TEXT,
    steps      INTEGER,
    seed       INTEGER,
    optimizer  TEXT,
    elapsed    REAL,
    metrics    TEXT NOT NULL DEFAULT '{}',
    tags       TEXT NOT NULL DEFAULT '{}',
    artifacts  TEXT NOT NULL DEFAULT '[]',
    snapshots  INTEGER NOT NULL DEFAULT 0,
    files      TEXT NOT NULL DEFAULT '{}',
    format     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_name ON runs(name);
CREATE INDEX IF NOT EXISTS runs_created ON runs(created);
"""

COLUMNS = (
    "id", "name", "grp", "method", "model", "data", "created", "status", "steps", "seed",
    "optimizer", "elapsed", "metrics", "tags", "artifacts", "snapshots", "files", "format",
)
JSON_COLUMNS = frozenset({"metrics", "tags", "artifacts", "files"})

_PREFIX = re.compile(r"[0-9a-f]{4,}")


class RunNotFoundError(LookupError):
    """No committed run with that id (or id prefix) in the store."""


class RunIndex:
    """The index file of the store at ``root`` (``root/index.sqlite``)."""

    def __init__(self, root: Path, timeout: float):
        self.root = root
        self.path = root / INDEX
        self.timeout = float(timeout)
        self._ready = False  # schema and WAL mode set up by this object

    # ------------------------------------------------------------------ connections
    def connect(self, create: bool) -> sqlite3.Connection | None:
        """A connection (autocommit; rows as ``sqlite3.Row``), or None when the index does not
        exist and ``create`` is False."""
        if not create and not self.path.exists():
            return None
        if create:
            self.root.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(str(self.path), timeout=self.timeout, isolation_level=None)
        con.row_factory = sqlite3.Row
        con.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
        con.execute("PRAGMA synchronous = FULL")
        if not self._ready:
            self._init_schema(con)
        return con

    def _init_schema(self, con: sqlite3.Connection) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":  # pragma: no cover - e.g. a file system without shm
                    raise OSError(f"the run index {self.path} could not switch to WAL mode (got {mode})")
                con.executescript(SCHEMA)  # idempotent statements, each atomic
                break
            except sqlite3.OperationalError as err:
                if "locked" not in str(err) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self._ready = True

    def create(self) -> None:
        """Create the index file (and its folder) if it does not exist yet."""
        self.connect(create=True).close()

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection | None]:
        con = self.connect(create=False)
        if con is None:
            yield None
            return
        try:
            yield con
        finally:
            con.close()

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``: writers queue instead of deadlocking)."""
        con = self.connect(create=True)
        try:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        finally:
            con.close()

    # ------------------------------------------------------------------ queries
    def find(self, run_id: str) -> sqlite3.Row:
        """The row of ``run_id``, or of the one run whose id starts with it (at least 4 hex
        characters); ``RunNotFoundError`` (naming recent runs) or ``ValueError`` (ambiguous)."""
        with self.read() as con:
            if con is None:
                raise RunNotFoundError(f"no run {run_id!r}: the store {self.root} is empty")
            row = con.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is not None:
                return row
            rows = []
            if _PREFIX.fullmatch(run_id):
                rows = con.execute("SELECT * FROM runs WHERE id LIKE ? ORDER BY created",
                                   (run_id + "%",)).fetchall()
            if len(rows) == 1:
                return rows[0]
            if len(rows) > 1:
                raise ValueError(f"run id prefix {run_id!r} is ambiguous: {[r['id'] for r in rows]}; give more characters")
            recent = [f"{r['id']} ({r['name']})" for r in
                      con.execute("SELECT id, name FROM runs ORDER BY created DESC LIMIT 5").fetchall()]
        hint = f"; recent runs: {', '.join(recent)}" if recent else "; the store has no runs"
        raise RunNotFoundError(f"no run {run_id!r} in {self.root}{hint}")

    def select(self, *, name: str | None = None, group: str | None = None) -> list[sqlite3.Row]:
        """All rows (oldest first), optionally only those with ``name`` / ``group``."""
        conds, args = [], []
        for column, value in (("name", name), ("grp", group)):
            if value is not None:
                conds.append(f"{column} = ?")
                args.append(value)
        sql = "SELECT * FROM runs" + (" WHERE " + " AND ".join(conds) if conds else "")
        with self.read() as con:
            return [] if con is None else con.execute(sql + " ORDER BY created, id", args).fetchall()

    def count(self) -> int:
        with self.read() as con:
            return 0 if con is None else con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]

    def ids(self) -> set[str]:
        with self.read() as con:
            return set() if con is None else {r[0] for r in con.execute("SELECT id FROM runs")}

    def integrity(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` ("ok" for a sound or absent index)."""
        with self.read() as con:
            return "ok" if con is None else con.execute("PRAGMA integrity_check").fetchone()[0]

    # ------------------------------------------------------------------ changes
    def insert(self, row: Mapping[str, Any]) -> None:
        """Add one run's row (``row``: a value for every name in ``COLUMNS``; the JSON columns
        as Python values) in one transaction."""
        values = [json.dumps(row[c], allow_nan=True) if c in JSON_COLUMNS else row[c] for c in COLUMNS]
        with self.write() as con:
            con.execute(f"INSERT INTO runs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                        values)

    def delete(self, run_id: str) -> None:
        with self.write() as con:
            con.execute("DELETE FROM runs WHERE id = ?", (run_id,))

    def add_artifact(self, run_id: str, name: str, rel: str, digest: str, place) -> None:
        """Record artifact ``name`` (file ``rel`` with SHA-256 ``digest``) of a run. ``place()``
        moves the file into place while the write lock is held, so that file and row change
        together (and a run deleted meanwhile gets no file)."""
        with self.write() as con:
            cur = con.execute("SELECT artifacts, files FROM runs WHERE id = ?", (run_id,)).fetchone()
            if cur is None:
                raise RunNotFoundError(f"run {run_id} was deleted while attaching {name!r}")
            names = sorted(set(json.loads(cur["artifacts"])) | {name})
            files = {**json.loads(cur["files"]), rel: digest}
            place()
            con.execute("UPDATE runs SET artifacts = ?, files = ? WHERE id = ?",
                        (json.dumps(names), json.dumps(files), run_id))
