"""The wheel a sysadmin installs carries everything the daemon reads at run time."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.e2e


class TestWheel:
    """Built without the source tree's help, the package still has its templates and static files."""

    def test_wheel_has_the_web_files(self, tmp_path: Path) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
             "-w", str(tmp_path), str(REPO)],
            capture_output=True, text=True, timeout=300,
        )
        assert result.returncode == 0, result.stderr
        [wheel] = tmp_path.glob("statusd-*.whl")
        names = set(zipfile.ZipFile(wheel).namelist())
        for needed in ("statusd/web/static/banner.js", "statusd/web/static/page.js",
                       "statusd/web/templates/page.html", "statusd/web/templates/site.html",
                       "statusd/web/status.schema.json",
                       "statusd/py.typed"):
            assert needed in names, needed
        assert not any("tests/" in name for name in names)
        entry = next(n for n in names if n.endswith("entry_points.txt"))
        assert "statusd = statusd.__main__:main" in zipfile.ZipFile(wheel).read(entry).decode()
