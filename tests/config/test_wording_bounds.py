"""The wording's once-per-version log memory stays bounded however often labels.yaml changes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from statusd.config import wording
from tests.conftest import ALERTS

pytestmark = pytest.mark.unit


class TestMissingWordsLoggedOncePerVersion:
    """A missing word is logged once per version of labels.yaml; older versions are forgotten."""

    def test_a_hundred_edits_remember_one_version(self, tmp_path: Path) -> None:
        alerts = Path(shutil.copytree(ALERTS, tmp_path / "alerts"))
        labels = alerts / "labels.yaml"
        with capture_logs() as logs:
            for version in range(100):
                os.utime(labels, (version + 1, version + 1))  # a new version on disk
                words = wording.load(alerts)
                words.wait("about", 45, "de", "fr")
                words.wait("about", 45, "de", "fr")  # the same version: not logged again
        assert [e["event"] for e in logs].count("wording_missing") == 100
        assert len([seen for seen in wording._LOGGED if seen[0] == labels]) == 1
