"""State stores: where the apply lock, the journal, status documents and leases of a target live.

The store is chosen by a URL (``--state`` or ``RECONCILER_STATE``):

* ``sqlite:PATH``: an SQLite file (the default; see ``default_sqlite_path``);
* ``postgresql://USER@HOST:PORT/DB?...`` (or ``postgres://``): a shared PostgreSQL database.

Everything is keyed by the canonical target string, so every checkout that names the same target sees
the same lock and history. State a release before this one kept in a folder's ``.reconciler/``
(``journal.jsonl``, the reconcile loop's status file) is imported into the store the first time the store
is opened for that target from that folder; entries keep their identity, so importing twice adds nothing.

I/O: opens the store (a file or a database connection); reads the legacy state files once.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import urllib.parse
from pathlib import Path

from reconciler.errors import ConfigError, StateError
from reconciler.state.base import JournalEntry, StateStore
from reconciler.state.folder import TARGET_ENV, default_target, state_dir

__all__ = [
    "STATE_ENV",
    "StateStore",
    "canonical_target",
    "configure",
    "default_sqlite_path",
    "open_early",
    "open_store",
    "open_url",
    "redact_url",
    "reset_stores",
    "state_url",
    "user_state_dir",
]

STATE_ENV = "RECONCILER_STATE"

_configured: str | None = None
_stores_lock = threading.Lock()
_stores: dict[tuple[int, str], StateStore] = {}
_imported: set[tuple[int, str, str]] = set()
_early_failures: dict[tuple[int, str], Exception] = {}


def configure(url: str | None) -> None:
    """Use ``url`` for the rest of this process (the ``--state`` flag); None: back to the environment."""
    global _configured
    _configured = url or None


def user_state_dir() -> Path:
    """The user's state folder: ``RECONCILER_STATE_DIR`` if set, else ``$XDG_STATE_HOME/reconciler``."""
    explicit = os.environ.get("RECONCILER_STATE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(xdg) / "reconciler"


def _target_key(target: str) -> str:
    return hashlib.sha256(target.encode()).hexdigest()[:16]


def canonical_target(text: str | None) -> str:
    """The target string every provider reports for ``text`` (None: ``$RECONCILER_TARGET`` or the default)."""
    text = text or os.environ.get(TARGET_ENV) or default_target(create=False)
    if text.startswith("local:") and len(text) > len("local:"):
        return "local:" + os.path.abspath(text[len("local:") :])
    if text == "graph" or text.startswith(("graph:", "graph+")):
        from reconciler.graph.provider import parse_target

        return parse_target(text)[1]
    return text


def default_sqlite_path(target: str, folder: Path | None = None) -> str:
    """Next to the tenant file for a local target; under the user's state folder (or ``folder``) for
    any other."""
    if target.startswith("local:"):
        root, _ext = os.path.splitext(target[len("local:") :])
        return root + ".state.db"
    return str((folder or user_state_dir()) / "targets" / f"{_target_key(target)}.db")


def state_url(target: str) -> str:
    return _configured or os.environ.get(STATE_ENV) or "sqlite:" + default_sqlite_path(target)


def redact_url(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = urllib.parse.unquote(parts.username or "")
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def open_url(url: str) -> StateStore:
    """A new store instance for a state URL (``open_store`` shares one per process instead)."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        from reconciler.state.sqlite import SqliteStore

        path = url[len("sqlite:") :]
        if path.startswith("//"):  # sqlite:///abs/path, the URL spelling
            path = path[2:]
        if not path:
            raise ConfigError("a state URL sqlite:PATH needs a path")
        return SqliteStore(path)
    if scheme in ("postgresql", "postgres"):
        try:
            from reconciler.state.postgres import PostgresStore
        except ImportError:
            raise StateError(
                "a PostgreSQL state store needs the psycopg driver: pip install 'reconciler[postgresql]'"
            ) from None
        store: StateStore = PostgresStore(url)
        return store
    raise ConfigError(
        f"unknown state store {redact_url(url)!r}: expected sqlite:PATH or postgresql://USER@HOST/DB"
    )


def open_early(target: str) -> None:
    """Start opening the store of ``target`` (canonical) in the background, for a command that will
    take its lock after other work (loading the desired state): connecting to a PostgreSQL server, and
    the round trips of the first queries, then overlap that work instead of delaying the lock. A
    failure is kept and raised by the ``open_store`` that needs the store. SQLite opens in about a
    millisecond: nothing is started for it."""
    url = state_url(target)
    if url.split(":", 1)[0].lower() not in ("postgresql", "postgres"):
        return
    key = (os.getpid(), url)

    def run() -> None:
        try:
            open_store(target)
        except Exception as exc:  # raised again where the store is needed
            with _stores_lock:
                _early_failures[key] = exc

    threading.Thread(target=run, name="state-store-open", daemon=True).start()


def open_store(target: str) -> StateStore:
    """The store of ``target`` (canonical), opened once per process and URL; legacy state imported."""
    url = state_url(target)
    key = (os.getpid(), url)  # a forked child opens its own connections
    with _stores_lock:
        failed = _early_failures.pop(key, None)
        if failed is not None:
            raise failed
        store = _stores.get(key)
        if store is None:
            store = _stores[key] = open_url(url)
        if (os.getpid(), url, target) not in _imported:
            _import_legacy(store, target)
            _imported.add((os.getpid(), url, target))
    return store


def reset_stores() -> None:
    """Close every store this process opened (tests, and a process that changes its state URL)."""
    with _stores_lock:
        for (pid, _url), store in list(_stores.items()):
            if pid == os.getpid():
                store.close()
        _stores.clear()
        _imported.clear()
        _early_failures.clear()


# -- the state of earlier releases ----------------------------------------------------------------------

MAX_LEGACY_BYTES = 512 * 1024 * 1024


def _import_legacy(store: StateStore, target: str) -> None:
    folder = state_dir()
    journal = folder / "journal.jsonl"
    try:
        size = journal.stat().st_size if journal.is_file() else -1
    except OSError:
        size = -1
    if 0 < size <= MAX_LEGACY_BYTES:
        mark = f"imported:{journal.resolve()}:{target}"
        if store.get_meta(mark) != str(size):
            store.append(target, _legacy_entries(journal, target))
            store.set_meta(mark, str(size))
    status = folder / "reconcile" / f"status-{_target_key(target)}.json"
    if status.is_file() and store.get_status(target, "reconcile") is None:
        try:
            doc = json.loads(status.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if isinstance(doc, dict) and doc.get("target") == target:
            store.put_status(target, "reconcile", doc)


def _legacy_entries(path: Path, target: str) -> list[JournalEntry]:
    """The lines of an old ``journal.jsonl`` that belong to runs against ``target``."""
    out: list[JournalEntry] = []
    mine: set[str] = set()
    with open(path, "rb") as fh:
        for raw in fh:
            try:
                entry = json.loads(raw)
            except ValueError:
                continue  # a line cut short by a crash
            if not isinstance(entry, dict):
                continue
            run, event = str(entry.get("run")), str(entry.get("event"))
            if event == "run-start" and entry.get("target") == target:
                mine.add(run)
            if run not in mine:
                continue
            data = {k: v for k, v in entry.items() if k not in ("time", "run", "event")}
            # The line's own digest is its identity: importing the same file again adds nothing.
            ident = "legacy-" + hashlib.sha256(raw.rstrip(b"\n")).hexdigest()[:32]
            out.append(JournalEntry(ident, run, event, str(entry.get("time")), data))
    return out
