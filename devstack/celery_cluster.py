"""Airflow with the CeleryExecutor on one machine, its workers as if on machines of their own.

CeleryDeployment is an AirflowDeployment (api-server, dag-processor, scheduler, optionally
the triggerer; metadata DB on the stack's PostgreSQL) whose scheduler hands tasks to Celery:
Redis (Debian's redis-server, devstack.redis_server) is the broker, the metadata database
is the result backend (db+postgresql://...), and each `airflow celery worker` runs tasks
as a machine of its own would:

- its own AIRFLOW_HOME (task logs), TMPDIR and TRACKING_SYNC_STAGING_DIR under
  <home>/workers/<name>/: no folder is shared between workers, or with the scheduler;
- its own Celery hostname (`--celery-hostname <name>`), which is also the hostname its task
  instances record (task_instance.hostname): Airflow's [core] hostname_callable is
  worker_hostname() below, not the machine's FQDN, which every worker here shares;
- its own log-server port (all workers share one network interface). The api-server fetches
  a running task's log from http://<hostname>:<port>, which these names do not resolve to:
  read the logs in each worker's home (task_log() does).

`task_queues` pins tasks to queues by task_id prefix (a cluster policy applied where DAGs are
parsed: devstack/queue_routing/airflow_local_settings.py) and each worker consumes the queues
it lists, e.g. exports on one worker and uploads on the other, so that every hand-over
between the two crosses machines.

    deployment = CeleryDeployment(home, postgres=stack.postgres, env=...,
                                  workers=(CeleryWorker("worker-a", ("default", "export")),
                                           CeleryWorker("worker-b", ("default", "upload"))),
                                  task_queues={"export_": "export", "upload_": "upload"})
    deployment.start(dag_ids=(DAG_ID,))   # redis, DB, migrate, components, workers; ready
    ...
    deployment.stop()                     # every process (redis too), the metadata DB dropped
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from devstack.airflow import HOST, AirflowDeployment, AirflowDidNotStart, processes_in_sessions, tail
from devstack.net import free_port, port_is_open
from devstack.redis_server import LocalRedis

# What a Celery deployment runs besides its workers. No triggerer unless asked: nothing in
# the tests that use this defers.
CELERY_COMPONENTS = ("api-server", "dag-processor", "scheduler")
HOSTNAME_VARIABLE = "DEVSTACK_WORKER_HOSTNAME"
QUEUES_VARIABLE = "DEVSTACK_TASK_QUEUES"
QUEUE_ROUTING_DIR = Path(__file__).resolve().parent / "queue_routing"
WORKER_READY_TIMEOUT = 120


def worker_hostname() -> str:
    """Airflow's [core] hostname_callable on a devstack Celery worker: the worker's name."""
    return os.environ[HOSTNAME_VARIABLE]


@dataclass(frozen=True)
class CeleryWorker:
    """One `airflow celery worker`: its name (Celery hostname and task_instance.hostname),
    the queues it consumes and how many tasks it runs at once."""

    name: str
    queues: tuple[str, ...] = ("default",)
    concurrency: int = 2


@dataclass
class CeleryDeployment(AirflowDeployment):
    components: tuple[str, ...] = CELERY_COMPONENTS
    workers: tuple[CeleryWorker, ...] = (CeleryWorker("worker-a"), CeleryWorker("worker-b"))
    task_queues: dict[str, str] = field(default_factory=dict)  # task_id prefix -> queue
    redis: LocalRedis | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        names = [worker.name for worker in self.workers]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"CeleryDeployment needs workers with distinct names, got {names}")
        served = {queue for worker in self.workers for queue in worker.queues}
        orphaned = sorted(set(self.task_queues.values()) - served)
        if orphaned:
            raise ValueError(
                f"no worker consumes the queue(s) {orphaned}: tasks routed there would never run"
            )
        self.worker_log_ports = {name: free_port() for name in names}
        self.redis_port = free_port()
        self._redis_sessions: set[int] = set()  # redis-server leads a session of its own

    # ---------------------------------------------------------------- where

    def worker_home(self, worker: str) -> Path:
        """The worker's "machine": airflow/ (its AIRFLOW_HOME), tmp/, staging/."""
        return self.home / "workers" / worker

    @property
    def broker_url(self) -> str:
        return f"redis://{HOST}:{self.redis_port}/0"

    def process_env(self) -> dict[str, str]:
        env = super().process_env()
        result_backend = self.metadata_dsn.replace("postgresql://", "db+postgresql+psycopg2://", 1)
        env.update(
            {
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__CELERY__BROKER_URL": self.broker_url,
                "AIRFLOW__CELERY__RESULT_BACKEND": result_backend,
                "AIRFLOW__CELERY__SYNC_PARALLELISM": "1",
                # The api-server reads a running task's log from the first worker's server.
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.worker_log_ports[self.workers[0].name]),
            }
        )
        if self.task_queues:
            env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(QUEUE_ROUTING_DIR)])
            env[QUEUES_VARIABLE] = json.dumps(self.task_queues)
        return env

    def worker_env(self, worker: CeleryWorker) -> dict[str, str]:
        machine = self.worker_home(worker.name)
        return {
            **self.process_env(),
            "AIRFLOW_HOME": str(machine / "airflow"),
            "TMPDIR": str(machine / "tmp"),
            "TRACKING_SYNC_STAGING_DIR": str(machine / "staging"),
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{__name__}.worker_hostname",
            HOSTNAME_VARIABLE: worker.name,
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.worker_log_ports[worker.name]),
        }

    # ------------------------------------------------------------- lifecycle

    def start(self, dag_ids: tuple[str, ...] = (), *, import_errors_fail: bool = True) -> CeleryDeployment:
        """Redis, then what AirflowDeployment.start() does with the workers launched beside
        the components, until each worker answers a Celery ping. On any failure everything
        started so far is stopped."""
        try:
            self.redis = LocalRedis(self.home / "redis", port=self.redis_port).start()
            self._redis_sessions.add(self.redis.pid)
            super().start(dag_ids, import_errors_fail=import_errors_fail)
            self.wait_for_workers()
        except BaseException:
            self.stop()
            raise
        return self

    def launch(self) -> None:
        """The components and the workers, without waiting: a worker needs only the broker
        and the metadata DB to start."""
        super().launch()
        self.launch_workers()

    def launch_workers(self) -> None:
        for worker in self.workers:
            env = self.worker_env(worker)
            for folder in ("airflow", "tmp", "staging"):
                (self.worker_home(worker.name) / folder).mkdir(parents=True, exist_ok=True)
            name = f"celery-worker-{worker.name}"
            with self.output(name).open("ab") as sink:
                self.processes[name] = subprocess.Popen(
                    [
                        sys.executable, "-m", "airflow", "celery", "worker",
                        "--celery-hostname", worker.name,
                        "--queues", ",".join(worker.queues),
                        "--concurrency", str(worker.concurrency),
                        "--without-mingle", "--without-gossip",
                    ],
                    env=env,
                    cwd=self.worker_home(worker.name),
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )  # fmt: skip
            self._sessions.add(self.processes[name].pid)

    def ping_workers(self) -> set[str]:
        """The Celery node names (celery@<name>) that answer a ping through the broker."""
        from celery import Celery

        app = Celery(broker=self.broker_url)
        try:
            return {name for reply in app.control.ping(timeout=1.0) for name in reply}
        finally:
            app.close()

    def wait_for_workers(self) -> None:
        started = time.monotonic()
        expected = {f"celery@{worker.name}" for worker in self.workers}
        while True:
            self.check_alive()
            missing = expected - self.ping_workers()
            if not missing:
                self.timings.append(f"workers ready: {time.monotonic() - started:.1f}s")
                return
            if time.monotonic() > started + WORKER_READY_TIMEOUT:
                raise AirflowDidNotStart(
                    f"Celery workers {sorted(missing)} did not answer a ping after {WORKER_READY_TIMEOUT}s\n"
                    + "\n".join(
                        f"--- {name}\n{tail(self.output(name))}"
                        for name in self.processes
                        if name.startswith("celery-worker-")
                    )
                )
            time.sleep(0.5)

    def stop(self) -> list[str]:
        """The Airflow processes and workers (AirflowDeployment.stop), then Redis: the
        workers' warm shutdown still talks to the broker."""
        try:
            killed = super().stop()
        finally:
            if self.redis is not None:
                self.redis.stop()
                self.redis = None
        for pid in processes_in_sessions(self._redis_sessions):
            killed.append(f"leftover pid {pid} (redis)")
            os.kill(pid, signal.SIGKILL)
        return killed

    def leftover_pids(self) -> list[int]:
        """As AirflowDeployment's, and once Redis is stopped, anything left in its session
        (while it runs, the sweep at the end of AirflowDeployment.stop must not see it)."""
        pids = super().leftover_pids()
        if self.redis is None:
            pids += processes_in_sessions(self._redis_sessions)
        return pids

    def open_ports(self) -> list[int]:
        ports = [*self.worker_log_ports.values(), self.redis_port]
        return sorted({*super().open_ports(), *(port for port in ports if port_is_open(HOST, port))})

    # ------------------------------------------------------------------ logs

    def task_log(
        self, dag_id: str, run_id: str, task_id: str, try_number: int, chars: int = 6000, map_index: int = -1
    ) -> str:
        """The end of one attempt's log, from the worker that ran it (a mapped task's: of its
        `map_index`)."""
        relative = Path("logs", f"dag_id={dag_id}", f"run_id={run_id}", f"task_id={task_id}")
        attempt = f"attempt={max(try_number, 1)}.log"
        for worker in self.workers:
            folder = self.worker_home(worker.name) / "airflow" / relative
            found = sorted(folder.glob(f"map_index={map_index}/{attempt}" if map_index >= 0 else attempt))
            if found:
                return f"({worker.name}: {found[0]})\n" + tail(found[0], chars)
        return f"(no log of {task_id} attempt {try_number} on any worker)"

    def task_log_files(self) -> dict[str, list[Path]]:
        """{worker name: every task log file in its AIRFLOW_HOME}."""
        return {
            worker.name: sorted(
                p for p in (self.worker_home(worker.name) / "airflow" / "logs").rglob("*.log")
            )
            for worker in self.workers
        }
