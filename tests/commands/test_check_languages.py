"""`statusd check` passes on the shipped files whichever of the shipped languages are configured."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parent.parent.parent
SHIPPED = ("fr", "en", "sv")
SUBSETS = [("fr",), ("en",), ("sv",), ("fr", "en"), ("en", "sv"), ("sv", "fr"), SHIPPED]


def narrowed(node: Any, keep: tuple[str, ...]) -> Any:
    """The shipped YAML with every text in a language outside `keep` left out."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key in SHIPPED and key not in keep:
                continue
            if isinstance(value, dict) and value.get("language") in SHIPPED and value["language"] not in keep:
                continue  # a channel in a language not configured
            out[key] = list(keep) if key == "languages" else narrowed(value, keep)
        return out
    if isinstance(node, list):
        return [narrowed(item, keep) for item in node]
    return node


def write(path: Path, data: Any) -> None:
    yaml = YAML()
    out = io.StringIO()
    yaml.dump(data, out)
    path.write_text(out.getvalue(), encoding="utf-8")


class TestShippedLanguages:
    """Unused templates of the shipped languages are not a problem."""

    @pytest.mark.parametrize("keep", SUBSETS, ids=["-".join(s) for s in SUBSETS])
    def test_check_passes(self, tmp_path: Path, keep: tuple[str, ...]) -> None:
        yaml = YAML(typ="safe")
        config = narrowed(yaml.load((REPO / "statusd.yaml").read_text(encoding="utf-8")), keep)
        config.update(alerts=str(REPO / "alerts"), status_file=str(tmp_path / "status.yaml"))
        write(tmp_path / "statusd.yaml", config)
        write(tmp_path / "status.yaml",
              narrowed(yaml.load((REPO / "status.yaml").read_text(encoding="utf-8")), keep))
        done = subprocess.run([sys.executable, "-m", "statusd", "--config", str(tmp_path / "statusd.yaml"),
                               "check"], capture_output=True, text=True, cwd=tmp_path, timeout=60, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "all right" in done.stdout

    def test_a_misnamed_template_is_still_reported(self, tmp_path: Path) -> None:
        alerts = tmp_path / "alerts"
        alerts.mkdir()
        for shipped in (REPO / "alerts").iterdir():
            (alerts / shipped.name).write_bytes(shipped.read_bytes())
        (alerts / "status_chnaged.fr.j2").write_text("{{ site }}", encoding="utf-8")
        yaml = YAML(typ="safe")
        config = narrowed(yaml.load((REPO / "statusd.yaml").read_text(encoding="utf-8")), ("fr",))
        config.update(alerts=str(alerts), status_file=str(REPO / "status.yaml"))
        write(tmp_path / "statusd.yaml", config)
        done = subprocess.run([sys.executable, "-m", "statusd", "--config", str(tmp_path / "statusd.yaml"),
                               "check"], capture_output=True, text=True, cwd=tmp_path, timeout=60, check=False)
        assert done.returncode == 1
        assert "status_chnaged.fr.j2: is never used" in done.stdout
