"""Real Airflow notifiers for tests: one appends its rendered text to a file, one keeps it.

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


class RecordingNotifier(BaseNotifier):
    """Keeps what it was asked to send (templated like provider notifiers), in this process:
    for tests that call the callbacks directly (`tests.e2e.notifiers.RecordingNotifier`)."""

    template_fields = ("text",)
    sent: list[str] = []

    def __init__(self, text: str = "{{ failure_summary }}"):
        super().__init__()
        self.text = text

    def notify(self, context) -> None:
        RecordingNotifier.sent.append(self.text)
