"""`statusd set` starts fast: it imports neither structlog nor asyncio, and what it logs is still configured."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from statusd.outbox.sqlite import SqliteStore
from tests.conftest import WriteConfig

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parent.parent.parent


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          cwd=REPO, timeout=60, check=False)


class TestLoggingOnImport:
    """structlog is configured the moment it is first imported; events below the level never import it."""

    def test_dropped_events_import_nothing_kept_ones_are_configured(self) -> None:
        done = _python("""
            import logging, sys
            from statusd import logs
            logs.configure_on_import(logging.WARNING)
            log = logs.LazyLogger()
            log.info("not_kept", file="x")
            print("structlog" in sys.modules)
            log.warning("kept_event", token="s3cret-value", where="here")
        """)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "False"
        (line,) = [json.loads(x) for x in done.stderr.splitlines() if x.strip()]
        assert line["event"] == "kept_event" and line["level"] == "warning" and line["where"] == "here"
        assert "s3cret" not in done.stderr  # redacted: the configuration is statusd's, not structlog's default

    def test_a_module_importing_structlog_itself_finds_it_configured(self) -> None:
        done = _python("""
            import logging
            from statusd import logs
            logs.configure_on_import(logging.WARNING)
            import structlog
            structlog.get_logger().info("below_the_level")
            structlog.get_logger().error("above", password="hunter2-hunter2")
        """)
        assert done.returncode == 0, done.stderr
        assert "below_the_level" not in done.stderr and "hunter2" not in done.stderr
        assert json.loads(done.stderr.strip())["event"] == "above"

    def test_the_standard_librarys_logging_imported_later_is_routed_through_statusd(self) -> None:
        done = _python("""
            import sys
            from statusd import logs
            logs.configure_on_import(logs.WARNING)
            print("logging" in sys.modules)
            import logging
            logging.getLogger("some.library").info("below_the_level")
            logging.getLogger("some.library").warning("Authorization: Bearer abcdef123456")
        """)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "False"
        (line,) = [json.loads(x) for x in done.stderr.splitlines() if x.strip()]
        assert line["event"] == "library_log" and line["logger"] == "some.library"
        assert "abcdef123456" not in done.stderr  # redacted: routed through statusd's structlog


class TestSetImports:
    """A local `statusd set` loads no web stack, no templates, no event loop and no logging library;
    nor what only a mistake, the store, the remote command or the daemon's sections need."""

    def test_modules(self, write_config: WriteConfig, tmp_path: Path) -> None:
        config = write_config()
        done = _python(f"""
            import sys
            from statusd.commands import main
            code = main(["--config", {str(config)!r}, "--state-dir", {str(tmp_path / "state")!r},
                         "set", "main", "closed", "-m", "fr:Fermé"])
            heavy = sorted(m for m in ("structlog", "asyncio", "aiohttp", "jinja2", "tweepy", "mastodon", "requests",
                                       "logging", "sqlite3", "json", "difflib", "statusd.config.feeds",
                                       "statusd.config.rules", "statusd.config.channels", "hashlib", "socket",
                                       "shutil", "tempfile") if m in sys.modules)
            print(code, heavy)
        """)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().endswith("0 []"), done.stdout
        assert "level: closed" in (tmp_path / "status.yaml").read_text()

    def test_modules_with_the_daemons_store(self, write_config: WriteConfig, tmp_path: Path) -> None:
        """The usual case, a daemon's store beside: probed (sqlite3), but without the store's own
        modules, templates, logging library or event loop (a Message's module once pulled them all)."""
        config = write_config()
        SqliteStore(tmp_path / "state" / "statusd.db").close()
        done = _python(f"""
            import sys
            from statusd.commands import main
            code = main(["--config", {str(config)!r}, "--state-dir", {str(tmp_path / "state")!r},
                         "set", "main", "closed", "-m", "fr:Fermé"])
            heavy = sorted(m for m in ("structlog", "asyncio", "aiohttp", "jinja2", "logging", "statusd.compose.composer",
                                       "statusd.sensors", "statusd.config.channels", "statusd.outbox.store", "statusd.events",
                                       "hashlib") if m in sys.modules)
            print(code, "sqlite3" in sys.modules, heavy)
        """)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().endswith("0 True []"), done.stdout


class TestHelpWidth:
    """The parsers' help is as wide as argparse's own would make it, without importing shutil."""

    @pytest.mark.parametrize("columns", ["60", "200", "", "wide", "-3"])
    def test_as_shutil_reads_it(self, columns: str, monkeypatch: pytest.MonkeyPatch) -> None:
        import shutil

        from statusd.commands import argv

        monkeypatch.setenv("COLUMNS", columns)
        monkeypatch.setenv("LINES", "24")  # shutil asks the terminal only when one of the two is unset
        assert argv.columns() == shutil.get_terminal_size().columns
