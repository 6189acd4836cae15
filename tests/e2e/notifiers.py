"""A real Airflow notifier for tests: appends its rendered text to a file.

Named in TRACKING_SYNC_NOTIFIER of a test deployment (`tests.e2e.notifiers.FileNotifier`),
it is imported by whichever Airflow process notifies: a task's failure callback, or the
triggerer running a Deadline Alert's callback.
"""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import BaseNotifier


class FileNotifier(BaseNotifier):
    template_fields = ("text",)

    def __init__(self, path: str, text: str = "{{ failure_summary }}"):
        super().__init__()
        self.path = path
        self.text = text

    def notify(self, context) -> None:
        with Path(self.path).open("a") as sink:
            sink.write(self.text.replace("\n", " ") + "\n")
