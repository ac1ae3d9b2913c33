"""A status.yaml put in place with its times preserved is still a change after the push."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from statusd.config.load import Config
from statusd.model import Level, StatusEntry, Target
from statusd.sources.status import bounds
from statusd.sources.status import file as status_file
from statusd.sources.status.unwritten import adopt

pytestmark = pytest.mark.unit


def test_a_backup_restored_with_cp_p_after_the_push_has_the_last_word(config: Config, tmp_path: Path) -> None:
    backup, status = tmp_path / "status.yaml.bak", tmp_path / "status.yaml"
    backup.write_text("main:\n  level: open\n")
    hour_ago = time.time() - 3600
    os.utime(backup, (hour_ago, hour_ago))
    pushed = {Target("main"): (StatusEntry(Level.EMERGENCY, {"en": "Fire"}, by="feed:panel"), time.time() - 60)}
    shutil.copy2(backup, status)  # staff put the file back (cp -p, rsync -a, mv of a prepared file)
    pending: dict[Target, Any] = {}
    adopted = adopt(pending, pushed, status_file.read(status, config), bounds.signature(status), config)
    assert not adopted, "the closure the staff's restored file replaced came back"
