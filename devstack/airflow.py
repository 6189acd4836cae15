"""A real Airflow on the local stack: api-server, dag-processor, scheduler and triggerer as
subprocesses, on an AIRFLOW_HOME of their own and a metadata database on the stack's PostgreSQL.

Used by `make airflow` (`python -m devstack airflow`), by the real-backfill test and by any
test that needs Airflow's real scheduler, UI or REST API rather than dag.test().

    deployment = AirflowDeployment(home, postgres=stack.postgres, env=stack.env())
    deployment.start()          # metadata DB, `airflow db migrate`, components, wait until healthy
    deployment.cli("dags", "trigger", "postgres_to_redshift", ...)
    deployment.stop()           # every process it started, the metadata DB dropped

Why it is built this way (each measured here, Airflow 3.3):
- The metadata DB is PostgreSQL, not SQLite: with SQLite, `airflow backfill create` failed in
  2 of 4 runs with "database is locked" while the scheduler was busy.
- Every port is a free one, and the execution API URL follows the API port: tasks report to
  the api-server there, and a task that cannot reach it is killed at start.
- Components stop on SIGINT (SIGTERM orphans their children). Each runs in a session and
  process group of its own and gets SIGINT as a group, then SIGKILL after a timeout. Task
  processes run in process groups of their own (setpgid) but stay in their component's
  session, so what is left is found by session id and killed. A marker in the environment
  does not find them: Airflow retitles its workers, task supervisors and the api-server with
  setproctitle, which overwrites what /proc/<pid>/environ shows.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from importlib.metadata import version as _distribution_version
from pathlib import Path

from devstack.net import free_port, port_is_open
from devstack.postgres import PostgresServer
from devstack.stack import REPO_ROOT

COMPONENTS = ("api-server", "dag-processor", "scheduler", "triggerer")
# The name of each component in /api/v2/monitor/health (the api-server answers it itself).
HEALTH_KEYS = {"dag-processor": "dag_processor", "scheduler": "scheduler", "triggerer": "triggerer"}
MARKER = "DEVSTACK_AIRFLOW_MARKER"
ADMIN_USER = "admin"
HOST = "127.0.0.1"
STARTUP_TIMEOUT = 180  # ~25 s here when the machine is quiet; a busy one of 2 cores needs more
STOP_TIMEOUT = 30  # SIGINT to SIGKILL; a clean stop takes ~5-10 s
RUN_TIMEOUT = 240
BAD_TASK_STATES = ("failed", "up_for_retry", "upstream_failed", "removed")
# A migrated metadata DB kept in the server (per Airflow version), copied for each deployment.
MIGRATED_TEMPLATE = "airflow_migrated_" + "".join(
    char if char.isalnum() else "_" for char in _distribution_version("apache-airflow")
)


class AirflowDidNotStart(RuntimeError):
    """A component exited or never became healthy; the message carries the end of its output."""


class AirflowCommandFailed(RuntimeError):
    """An `airflow ...` command exited non-zero; the message carries its output."""


def clean_environment() -> dict[str, str]:
    """This process's environment without Airflow's and the pipeline's settings: a
    deployment must not inherit the AIRFLOW_HOME or connections of whoever started it."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AIRFLOW", "TRACKING_SYNC_")) and name != "PYTEST_CURRENT_TEST"
    }


def processes_in_sessions(sessions: set[int], marker: str | None = None) -> list[int]:
    """Live (not zombie) processes other than this one whose session id is in `sessions`, or
    whose environment holds the entry `marker` ("NAME=value")."""
    needle = marker.encode() if marker else None
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            state, session = fields[0], int(fields[3])
            in_session = session in sessions
            if not in_session and needle is not None:
                in_session = needle in (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile, or not ours to read
        if in_session and state != "Z":
            found.append(int(entry.name))
    return found


def sessions_under(root: int) -> set[int]:
    """The session ids of `root` and of every process descending from it: what a
    foreground `make airflow` started (its components lead sessions of their own)."""
    parents, sessions = {}, {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)], sessions[int(entry.name)] = int(fields[1]), int(fields[3])
    tree, frontier = {root}, [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier and pid not in tree]
        tree.update(children)
        frontier = children
    return {sessions[pid] for pid in tree if pid in sessions}


def tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else f"({path} missing)"


@dataclass
class AirflowDeployment:
    """Airflow's components on `home`, with a metadata database `airflow_<hex>` on `postgres`.

    `env` holds what the tasks need (the stack's AIRFLOW_CONN_* and TRACKING_SYNC_*) and any
    Airflow setting to override (AIRFLOW__...). `api_port` 0 picks a free port.
    """

    home: Path
    postgres: PostgresServer
    env: dict[str, str] = field(default_factory=dict)
    components: tuple[str, ...] = COMPONENTS
    api_port: int = 0
    dags_folder: Path = REPO_ROOT / "dags"
    plugins_folder: Path = REPO_ROOT / "plugins"
    user: str = ADMIN_USER
    startup_timeout: float = STARTUP_TIMEOUT
    stop_timeout: float = STOP_TIMEOUT
    processes: dict[str, subprocess.Popen] = field(default_factory=dict, init=False, repr=False)
    timings: list[str] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        unknown = set(self.components) - set(COMPONENTS)
        if unknown:
            raise ValueError(f"unknown Airflow components {sorted(unknown)}; known: {COMPONENTS}")
        self.home = Path(self.home)
        self.marker = uuid.uuid4().hex
        self.database = f"airflow_{self.marker[:8]}"
        self.api_port = self.api_port or free_port()
        self.ports = {
            "AIRFLOW__API__PORT": self.api_port,
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": free_port(),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": free_port(),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": free_port(),
        }
        self._secret_key = uuid.uuid4().hex
        self._jwt_secret = uuid.uuid4().hex
        # 32 random bytes, URL-safe base64: what Fernet.generate_key() makes
        self._fernet_key = base64.urlsafe_b64encode(os.urandom(32)).decode()
        self._database_created = False
        self._migrated = False
        self._launched_at: float | None = None
        self._sessions: set[int] = set()  # each component leads a session: its pid

    # ---------------------------------------------------------------- where

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.api_port}"

    @property
    def metadata_dsn(self) -> str:
        return self.postgres.dsn(self.database)

    @property
    def passwords_file(self) -> Path:
        return self.home / "simple_auth_manager_passwords.json.generated"

    @property
    def password(self) -> str:
        """The simple auth manager's password for `user`, generated by the api-server on its
        first start and kept in AIRFLOW_HOME (the same on every later start of this home)."""
        return json.loads(self.passwords_file.read_text())[self.user]

    def output(self, component: str) -> Path:
        """The file a component's stdout and stderr go to."""
        return self.home / f"{component}.out"

    @property
    def cli_transcript(self) -> Path:
        return self.home / "cli-output.log"

    def process_env(self) -> dict[str, str]:
        """The environment of every component and CLI call."""
        sql_alchemy_conn = self.metadata_dsn.replace("postgresql://", "postgresql+psycopg2://", 1)
        return {
            **clean_environment(),
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(self.plugins_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",  # ~0.1 GB less than the default 32
            # An idle scheduler loop sleeps up to this long before it sees a task end and queues the
            # next one: at the default 1 s, 0.3-0.5 s between two tasks of a run. At 0.2 s a nightly run
            # of 3,000 rows' changes took 7.8-9.3 s against 9.0-11.5 s, the full refresh 10.8-10.9 s against
            # 12.8 s (two deployments each, alternated); at 0.1 s the busier loop took it back.
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.2",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{self.user}:admin",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sql_alchemy_conn,
            "AIRFLOW__API__HOST": HOST,
            "AIRFLOW__API__WORKERS": "1",
            # A task's first call (PATCH .../run) waits for the api-server. On a loaded machine of
            # 2 cores it answered after ~21 s; at the default 5 s the task retried into a 400
            # (it had already started) and was SIGKILLed. Let it wait instead.
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
            "AIRFLOW__API__SECRET_KEY": self._secret_key,
            "AIRFLOW__API_AUTH__JWT_SECRET": self._jwt_secret,
            # One key for every component (a trigger's kwargs are encrypted with it): when no
            # airflow.cfg exists yet, each process that starts would otherwise generate its own.
            "AIRFLOW__CORE__FERNET_KEY": self._fernet_key,
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(self.plugins_folder)]),
            **self.env,
            **{name: str(port) for name, port in self.ports.items()},
            MARKER: self.marker,
        }

    # ------------------------------------------------------------- lifecycle

    def start(self, dag_ids: tuple[str, ...] = (), *, import_errors_fail: bool = True) -> AirflowDeployment:
        """Create and migrate the metadata DB, start the components, wait until they are
        healthy and the DAGs in `dag_ids` are parsed (see wait_until_ready). On any failure
        everything started so far is stopped before the error is raised."""
        try:
            self.create_metadata_database()
            self.migrate()
            self.launch()
            self.wait_until_ready(dag_ids, import_errors_fail=import_errors_fail)
        except BaseException:
            self.stop()
            raise
        return self

    def create_metadata_database(self) -> None:
        """The metadata DB: a copy of the migrated one an earlier deployment on the same server
        left as MIGRATED_TEMPLATE (0.2 s), or an empty one that migrate() migrates (3-4 s)."""
        self.home.mkdir(parents=True, exist_ok=True)
        if self._template_exists():
            self.postgres.execute(f'create database "{self.database}" template "{MIGRATED_TEMPLATE}"')
            self._migrated = True
        else:
            self.postgres.create_database(self.database)
        self._database_created = True

    def migrate(self) -> None:
        """`airflow db migrate`, unless the DB is a copy of a migrated one; then keep a copy of
        it as the template of the next deployment's DB (each test deployment's own DB, fresh)."""
        if self._migrated:
            # `db migrate` also wrote airflow.cfg before any component started; without it the
            # components, started at once, would each write one (and read the others' half-written).
            # Empty, it leaves every setting at its default or the environment's (process_env).
            (self.home / "airflow.cfg").touch()
            self.timings.append(f"metadata DB copied from {MIGRATED_TEMPLATE}")
            return
        self.cli("db", "migrate", timeout=300)
        import psycopg2

        try:  # nothing is connected to the new DB yet; another deployment may have made one since
            self.postgres.execute(f'create database "{MIGRATED_TEMPLATE}" template "{self.database}"')
        except psycopg2.Error:
            pass

    def _template_exists(self) -> bool:
        import psycopg2

        connection = psycopg2.connect(self.postgres.dsn("postgres"))
        try:
            with connection.cursor() as cursor:
                cursor.execute("select 1 from pg_database where datname = %s", (MIGRATED_TEMPLATE,))
                return cursor.fetchone() is not None
        finally:
            connection.close()

    def launch(self) -> None:
        """Start the components (each in a process group of its own) without waiting."""
        self.home.mkdir(parents=True, exist_ok=True)
        env = self.process_env()
        self._launched_at = time.monotonic()
        for name in self.components:
            with self.output(name).open("ab") as sink:
                self.processes[name] = subprocess.Popen(
                    [sys.executable, "-m", "airflow", name],
                    env=env,
                    cwd=self.home,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
                self._sessions.add(self.processes[name].pid)

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise AirflowDidNotStart(
                    f"airflow {name} exited with {process.returncode}; the end of its output "
                    f"({self.output(name)}):\n{tail(self.output(name))}"
                )

    def health(self) -> dict | None:
        """The api-server's /api/v2/monitor/health, or None while it does not answer."""
        try:
            with urllib.request.urlopen(f"{self.url}/api/v2/monitor/health", timeout=2) as response:
                return json.load(response)
        except (OSError, ValueError):
            return None

    def unhealthy(self) -> list[str]:
        """The started components that are not healthy yet."""
        health = self.health()
        if health is None:
            return ["api-server"] if "api-server" in self.components else list(self.components)
        return [
            name
            for name in self.components
            if name in HEALTH_KEYS and (health.get(HEALTH_KEYS[name]) or {}).get("status") != "healthy"
        ]

    def wait_until_ready(self, dag_ids: tuple[str, ...] = (), *, import_errors_fail: bool = True) -> None:
        """Every component healthy (the api-server answering, the others heartbeating) and,
        with dag-processor, every DAG in `dag_ids` parsed. A DAG file that fails to import
        raises at once, or, with import_errors_fail=False, ends the wait (the UI shows the
        error; see import_errors())."""
        deadline = time.monotonic() + self.startup_timeout
        while True:
            self.check_alive()
            waiting = self.unhealthy()
            if "dag-processor" in self.components and not waiting:
                errors = self.import_errors()
                if errors and import_errors_fail:
                    raise AirflowDidNotStart(f"DAG import errors: {errors}")
                parsed = {row[0] for row in self.query("select dag_id from serialized_dag")}
                if not errors:
                    waiting += [f"DAG {dag_id} parsed" for dag_id in dag_ids if dag_id not in parsed]
            if not waiting:
                if self._launched_at is not None:
                    self.timings.append(f"components ready: {time.monotonic() - self._launched_at:.1f}s")
                return
            if time.monotonic() > deadline:
                raise AirflowDidNotStart(
                    f"not ready after {self.startup_timeout:.0f}s, waiting for {waiting}\n"
                    + "\n".join(f"--- airflow {name}\n{tail(self.output(name))}" for name in self.processes)
                )
            time.sleep(1)

    def stop(self) -> list[str]:
        """Stop every process started here and drop the metadata DB; idempotent.

        Returns what had to be killed the hard way (SIGKILL after the timeout, or a leftover
        found by the marker): empty after a clean stop."""
        started = time.monotonic()
        killed = []
        for process in self.processes.values():
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGINT)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + self.stop_timeout
        for name, process in self.processes.items():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                killed.append(f"airflow {name} (pid {process.pid})")
        for process in self.processes.values():
            try:
                os.killpg(process.pid, signal.SIGKILL)  # the rest of each group, if any
            except ProcessLookupError:
                pass
            process.wait()
        for pid in self.leftover_pids():
            killed.append(f"leftover pid {pid}")
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self._database_created:
            import psycopg2

            try:
                self.postgres.execute(f'drop database if exists "{self.database}" with (force)')
            except psycopg2.OperationalError as error:  # the server stopped first: nothing to drop
                self.timings.append(f"metadata DB {self.database} not dropped: {error}")
            self._database_created = False
        if self.processes:
            self.timings.append(f"stopped: {time.monotonic() - started:.1f}s")
        self.processes.clear()
        return killed

    def leftover_pids(self) -> list[int]:
        """Live processes (other than this one) in the session of a component started here,
        or carrying this deployment's marker in their environment."""
        return processes_in_sessions(self._sessions, marker=f"{MARKER}={self.marker}")

    def open_ports(self) -> list[int]:
        return [port for port in self.ports.values() if port_is_open(HOST, port)]

    def __enter__(self) -> AirflowDeployment:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # ------------------------------------------------------------------ CLI

    def cli(self, *args: str, timeout: float = 120) -> str:
        """`airflow <args>` with the deployment's environment; its output, or
        AirflowCommandFailed with it. Every call is kept in cli_transcript."""
        self.home.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.process_env(),
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        output = result.stdout + result.stderr
        self.timings.append(f"airflow {' '.join(args[:2])}: {time.monotonic() - started:.1f}s")
        with self.cli_transcript.open("a") as transcript:
            transcript.write(f"$ airflow {' '.join(args)}\n{output}\n")
        if result.returncode != 0:
            raise AirflowCommandFailed(
                f"airflow {' '.join(args)} exited {result.returncode}:\n{output[-4000:]}"
            )
        return output

    # -------------------------------------------------------------- REST API

    def api(self, method: str, path: str, body: dict | None = None, token: str | None = None) -> dict:
        """One REST call (`path` like /api/v2/dags/x) as `user`; the decoded JSON answer."""
        token = token or self.access_token()
        request = urllib.request.Request(
            self.url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def access_token(self) -> str:
        return access_token(self.url, self.user, self.password)

    # ------------------------------------------------------------ metadata DB

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        import psycopg2

        connection = psycopg2.connect(self.metadata_dsn)
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()
        finally:
            connection.close()

    def import_errors(self) -> dict[str, str]:
        """{DAG file: traceback} of the files the dag-processor failed to import."""
        return dict(self.query("select filename, stacktrace from import_error"))

    def task_states(self, run_ids: list[str]) -> dict[str, dict[str, str]]:
        """{run_id: {task_id: state}}."""
        rows = self.query(
            "select run_id, task_id, state from task_instance where run_id = any(%s)", (list(run_ids),)
        )
        states: dict[str, dict[str, str]] = {}
        for run_id, task_id, state in rows:
            states.setdefault(run_id, {})[task_id] = state
        return states

    def task_log(
        self, dag_id: str, run_id: str, task_id: str, try_number: int, chars: int = 6000, map_index: int = -1
    ) -> str:
        """The end of one attempt's log file (a mapped task's: of its `map_index`)."""
        logs = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        if map_index >= 0:
            logs = logs / f"map_index={map_index}"
        return tail(logs / f"attempt={max(try_number, 1)}.log", chars)

    def wait_for_runs(
        self,
        where: str,
        params: tuple,
        count: int,
        timeout: float = RUN_TIMEOUT,
        may_retry: tuple[str, ...] = (),
    ) -> list[tuple]:
        """Wait until `count` dag runs matching the SQL condition `where` (over dag_run) have
        finished; a task failing or going up for retry raises at once, with its log (but for
        the tasks in `may_retry`, which may wait by retrying). Returns (run_id, state,
        data_interval_start, data_interval_end) by logical date."""
        started = time.monotonic()
        deadline = started + timeout
        while True:
            self.check_alive()
            bad = self.query(
                "select ti.dag_id, ti.run_id, ti.task_id, ti.state, ti.try_number, ti.map_index from task_instance ti "
                f"join dag_run on dag_run.dag_id = ti.dag_id and dag_run.run_id = ti.run_id where {where} "
                "and ti.state = any(%s)",
                (*params, list(BAD_TASK_STATES)),
            )
            bad = [row for row in bad if not (row[3] == "up_for_retry" and row[2] in may_retry)]
            if bad:
                dag_id, run_id, task_id, state, try_number, map_index = bad[0]
                raise AssertionError(
                    f"task {task_id} of {run_id} is {state} (all bad: {bad}); its log:\n"
                    + self.task_log(dag_id, run_id, task_id, try_number, map_index=map_index)
                )
            runs = self.query(
                "select run_id, state, data_interval_start, data_interval_end from dag_run "
                f"where {where} order by logical_date",
                params,
            )
            if len(runs) == count and all(state in ("success", "failed") for _, state, *_ in runs):
                self.timings.append(f"{count} run(s) {params}: {time.monotonic() - started:.1f}s")
                return runs
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"runs not finished after {timeout:.0f}s: {runs}\n--- scheduler\n"
                    + tail(self.output("scheduler"))
                )
            time.sleep(1)


def access_token(url: str, username: str, password: str) -> str:
    """A JWT for the REST API from the simple auth manager (POST /auth/token)."""
    request = urllib.request.Request(
        f"{url}/auth/token",
        method="POST",
        data=json.dumps({"username": username, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)["access_token"]
    except urllib.error.HTTPError as error:
        raise RuntimeError(
            f"login as {username} at {url} refused: {error.code} {error.read()[:500]!r}"
        ) from None


# ---------------------------------------------------------------------------- make airflow

DAG_ID = "postgres_to_redshift"
UI_PORT = 8080


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


def _source_is_empty(dsn: str) -> bool:
    import psycopg2

    connection = psycopg2.connect(dsn)
    try:
        with connection.cursor() as cursor:
            cursor.execute("select not exists (select 1 from action)")
            return cursor.fetchone()[0]
    finally:
        connection.close()


def _write_exports(path: Path, env: dict[str, str]) -> None:
    import shlex

    path.write_text("".join(f"export {name}={shlex.quote(value)}\n" for name, value in env.items()))
    path.chmod(0o600)


def _shown(path: Path) -> str:
    """A path as the user typed it: relative to the working directory when under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def serve_ui(state_dir: Path, port: int = 0, rows: int | None = None) -> int:
    """`make airflow`, in the foreground: the local stack, demo data when the source is empty,
    and Airflow on it; Ctrl-C (or SIGTERM, as `make stack-down` sends) stops all of it."""
    from devstack import demo_data
    from devstack.stack import start_stack

    # Ctrl-C and SIGTERM (as `make stack-down` sends) both stop everything. SIGINT explicitly:
    # started from a background job without job control, Python inherits it ignored.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    say = lambda message: print(message, flush=True)  # noqa: E731
    state_dir.mkdir(parents=True, exist_ok=True)
    env_file, pid_file, airflow_env_file = state_dir / "env", state_dir / "pid", state_dir / "airflow.env"
    home = state_dir / "airflow"
    stack = deployment = None
    try:
        pid_file.write_text(str(os.getpid()))  # `make stack-down` and `status` see it
        say("starting the local stack (PostgreSQL, S3, Redshift stand-in) ...")
        stack = start_stack()
        stack.write_env_file(env_file)
        if _source_is_empty(stack.source_dsn):
            rows = rows or demo_data.DEFAULT_ROWS
            say(f"the source is empty: generating {rows:,} demo actions over 2025 ...")
            demo_data.generate(stack.source_dsn, rows=rows)
        if not port:
            port = UI_PORT if not port_is_open(HOST, UI_PORT) else free_port()
        deployment = AirflowDeployment(
            home,
            postgres=stack.postgres,
            env={**stack.env(), "TRACKING_SYNC_STAGING_DIR": str(home / "staging")},
            api_port=port,
        )
        say(f"starting Airflow ({', '.join(deployment.components)}) in {_shown(home)}; about a minute ...")
        deployment.start(dag_ids=(DAG_ID,), import_errors_fail=False)  # the UI shows them too
        for filename, stacktrace in deployment.import_errors().items():
            say(
                f"\nWARNING: {filename} does not import; the UI lists it under DAG import errors:\n{stacktrace}"
            )
        cli_env = {k: v for k, v in deployment.process_env().items() if k.startswith("AIRFLOW")}
        _write_exports(airflow_env_file, cli_env)
        say(
            f"\nAirflow is up: {deployment.url}\n"
            f"  user:     {deployment.user}\n"
            f"  password: {deployment.password}\n"
            f"  (kept in {_shown(deployment.passwords_file)}; the same on the next `make airflow`)\n\n"
            f"The DAG {DAG_ID} starts paused. Trigger it (the ▶ button; the form's 'Unpause on\n"
            "trigger' unpauses it) with mode=full_refresh to load the demo data into the Redshift\n"
            "stand-in, or Trigger → Backfill over some days of 2025, Max Active Runs 1. Unpaused, it\n"
            "also runs the latest nightly interval (no demo data there: nothing to move).\n\n"
            f'  databases:   source {_shown(env_file)}; psql "$SOURCE_DSN"; psql "$REDSHIFT_DSN"\n'
            f"  airflow CLI: source {_shown(airflow_env_file)}; .venv/bin/airflow dags list\n"
            f"  logs:        {_shown(home / 'logs')}; each component's output in {_shown(home)}/<component>.out\n\n"
            "Ctrl-C stops Airflow and the local stack."
        )
        while True:
            deployment.check_alive()
            time.sleep(1)
    except KeyboardInterrupt:
        return 0
    except (AirflowDidNotStart, AirflowCommandFailed) as error:
        print(f"Airflow stopped: {error}", file=sys.stderr, flush=True)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        say("stopping Airflow and the local stack ...")
        try:
            if deployment is not None:
                killed = deployment.stop()
                if killed:
                    say(f"killed the hard way: {killed}")
        finally:
            if stack is not None:
                stack.stop()
            for path in (env_file, airflow_env_file, pid_file):
                path.unlink(missing_ok=True)
            say("stopped")
