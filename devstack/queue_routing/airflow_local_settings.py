"""A cluster policy of devstack's Celery deployments (devstack/celery_cluster.py): the queue of
each task from its task_id's prefix, as JSON in DEVSTACK_TASK_QUEUES ({"export_": "export"}).

This folder is on the PYTHONPATH of a CeleryDeployment's processes when it routes tasks, so
Airflow imports this module as its airflow_local_settings. The dag-processor applies the policy
when it parses the DAG: the queue is in the serialized DAG, and the scheduler sends each task
instance to it. Test infrastructure only; the pipeline does not depend on queues.
"""

from __future__ import annotations

import json
import os


def task_policy(task) -> None:
    routes = json.loads(os.environ.get("DEVSTACK_TASK_QUEUES") or "{}")
    for prefix, queue in routes.items():
        if task.task_id.startswith(prefix):
            task.queue = queue
            return
