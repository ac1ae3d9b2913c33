"""One wording, from alerts/labels.yaml: an edit reaches the page, status.json, Atom and CAP alike."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ALERTS, BASE, CONSOLE
from tests.support.daemon import Daemon
from tests.support.waiting import until

pytestmark = pytest.mark.e2e

TOKEN = "counter-token-wording-1"
FEEDS = """
feeds:
  counters: {type: http, token: {env: COUNTER_TOKEN}}
rules:
  smoothing: {method: none}
  min_interval: 0s
"""
EDITS = {
    '    closed: "Fermé"': '    closed: "Portes closes"',
    '    title: "État de la bibliothèque"': '    title: "Où en est la bibliothèque"',
    '    cap: "Alertes (CAP)"': '    cap: "Alertes officielles"',
    '    about: "environ {d}"': '    about: "à peu près {d}"',
}


def edited_alerts(tmp_path: Path) -> Path:
    """A copy of alerts/ whose French labels a communications officer has reworded."""
    alerts = tmp_path / "alerts"
    shutil.copytree(ALERTS, alerts)
    labels = alerts / "labels.yaml"
    text = labels.read_text(encoding="utf-8")
    for old, new in EDITS.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    labels.write_text(text, encoding="utf-8")
    return alerts


def write(tmp_path: Path, alerts: Path, languages: str = "[fr, en, sv]") -> Path:
    path = tmp_path / "statusd.yaml"
    text = BASE.format(alerts=alerts, channels=CONSOLE, deadline="1h") + FEEDS
    path.write_text(text.replace("languages: [fr, en, sv]", f"languages: {languages}"), encoding="utf-8")
    (tmp_path / "status.yaml").write_text("main:\n  level: open\n", encoding="utf-8")
    return path


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return str(answer.read().decode("utf-8"))


def push_queue(daemon: Daemon, minutes: int) -> None:
    reading = {"kind": "queue", "site": "main", "queue": "entrance", "length": 80, "wait_minutes": minutes}
    request = urllib.request.Request(
        f"{daemon.url}/api/v1/readings", data=json.dumps(reading).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert answer.status == 202  # accepted: handed to the intake


class TestEditedLabelsReachEveryDocument:
    """The page, the banner's status.json, the Atom feed and CAP all read the edited labels.yaml."""

    async def test_every_public_document(self, tmp_path: Path) -> None:
        daemon = Daemon(write(tmp_path, edited_alerts(tmp_path)), tmp_path / "state",
                        env={"COUNTER_TOKEN": TOKEN}).start()
        try:
            push_queue(daemon, 47)

            def main() -> dict[str, Any]:
                return json.loads(get(f"{daemon.url}/status.json"))["sites"]["main"]  # type: ignore[no-any-return]

            await until(lambda: bool((main()["queues"].get("entrance") or {}).get("wording")),
                        "the queue wait in status.json", timeout=10, blocking=True)
            wait = main()["queues"]["entrance"]["wording"]
            assert wait["fr"] == "à peu près 45 min" and wait["en"] == "about 45 min"
            # A closure pauses the sensors' posts; the banner then shows the level alone.
            daemon.cli("set", "main", "closed", "-m", "fr:Dégât des eaux")
            await until(lambda: main()["level"] == "closed", "the closure in status.json", timeout=10, blocking=True)
            page = get(f"{daemon.url}/?lang=fr")
            assert "Portes closes" in page and "Où en est la bibliothèque" in page
            atom = get(f"{daemon.url}/feed.atom?lang=fr")
            assert "<title>Où en est la bibliothèque</title>" in atom and "Portes closes" in atom
            alerts = get(f"{daemon.url}/cap.xml")
            assert "<title>Alertes officielles</title>" in alerts
            assert "<headline>Bibliothèque centrale: Portes closes</headline>" in alerts
            assert "Fermé" not in page + atom + alerts  # the shipped wording is nowhere left
        finally:
            daemon.kill()


class TestMissingLanguage:
    """A configured language without labels is a `statusd check` problem naming labels.yaml."""

    def test_check_reports_it(self, tmp_path: Path) -> None:
        path = write(tmp_path, edited_alerts(tmp_path), languages="[fr, en, sv, de]")
        done = subprocess.run([sys.executable, "-m", "statusd", "--config", str(path), "check"],
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 1
        lines = [line.strip() for line in done.stdout.splitlines()]
        labels = tmp_path / "alerts" / "labels.yaml"
        assert any(line.startswith(f"{labels}: de: has no wording for open, limited, closed, emergency")
                   and "page.title" in line and "wait.about" in line for line in lines), done.stdout
