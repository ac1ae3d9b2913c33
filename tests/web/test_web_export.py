"""The export directory: the same documents as the endpoints, written atomically."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from statusd import loading
from statusd.model import Target
from statusd.web.export import Exporter, write_atomic
from statusd.web.server import WebServer
from statusd.web.sse import Hub
from statusd.web.state import WebState
from tests.conftest import WriteConfig
from tests.web.test_web_support import FLOOD, NOW, entry, event, later

pytestmark = pytest.mark.unit

SAME_AS = {"status.json": "/status.json", "feed.en.atom": "/feed.atom?lang=en",
           "closures.sv.ics": "/closures.ics?lang=sv", "cap.xml": "/cap.xml", "feed.atom": "/feed.atom?lang=fr",
           "static/page.css": "/static/page.css"}


@pytest.fixture
def export_state(write_config: WriteConfig, tmp_path: Path) -> WebState:
    path = write_config()
    path.write_text(path.read_text() + "web:\n  export_dir: public\n")
    return WebState(loading.load(path), hub=Hub())


class TestExport:
    """On every change the directory holds the endpoints' documents."""

    async def test_files_match_endpoints(self, export_state: WebState, tmp_path: Path) -> None:
        import aiohttp

        export_state.update({Target("main"): entry("closed", FLOOD)}, {},
                            [event("main", "closed", "open", NOW, FLOOD)], later(1))
        web = WebServer(export_state, "127.0.0.1", 0)
        await web.start()
        # The App runs the web side's loops in its TaskGroup; here, the exporter's alone.
        loops = [asyncio.ensure_future(coro) for _, coro in web.loops()]
        try:
            public = tmp_path / "public"
            for _ in range(100):
                if all((public / name).exists() for name in [*SAME_AS, "index.html"]):
                    break
                await asyncio.sleep(0.02)
            async with aiohttp.ClientSession() as session:
                for name, path in SAME_AS.items():
                    async with session.get(f"http://127.0.0.1:{web.port}{path}") as response:
                        assert (public / name).read_bytes() == await response.read(), name
            for lang in ("fr", "en", "sv"):
                assert f'<html lang="{lang}">' in (public / f"index.{lang}.html").read_text()
            assert (public / "index.html").read_bytes() == (public / "index.fr.html").read_bytes()
            assert 'href="index.en.html"' in (public / "index.html").read_text()
            assert 'data-events-url="http://127.0.0.1:8080/events"' in (public / "index.html").read_text()
            assert not [p for p in public.iterdir() if p.name.startswith(".")]
        finally:
            for loop in loops:
                loop.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            await web.stop()

    def test_unchanged_files_are_not_rewritten(self, tmp_path: Path) -> None:
        exporter = Exporter(tmp_path)
        assert sorted(exporter.write({"a.json": b"1", "b.json": b"2"})) == ["a.json", "b.json"]
        assert exporter.write({"a.json": b"1", "b.json": b"3"}) == ["b.json"]
        # A new exporter (a restart) finds identical files on disk and leaves them alone.
        assert Exporter(tmp_path).write({"a.json": b"1", "b.json": b"3"}) == []


class TestAtomic:
    """A reader never sees a partial file, only one whole version or the next."""

    def test_concurrent_reader(self, tmp_path: Path) -> None:
        path = tmp_path / "status.json"
        versions = {bytes([65 + n]) * (200_000 + n) for n in range(20)}
        write_atomic(path, b"A" * 200_000)
        stop, seen, bad = threading.Event(), set[bytes](), list[int]()

        def read() -> None:
            while not stop.is_set():
                body = path.read_bytes()
                if body in versions:
                    seen.add(body[:1])
                else:
                    bad.append(len(body))

        reader = threading.Thread(target=read)
        reader.start()
        for body in sorted(versions, key=len) * 3:
            write_atomic(path, body)
        stop.set()
        reader.join()
        assert bad == []
        assert len(seen) > 1

    def test_temp_file_in_same_directory(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        import os

        moves: list[tuple[str, str]] = []
        real = os.replace
        def replace(a: object, b: object) -> None:
            moves.append((str(a), str(b)))
            real(a, b)  # type: ignore[arg-type]

        monkeypatch.setattr(os, "replace", replace)
        write_atomic(tmp_path / "cap.xml", b"<x/>")
        ((source, target),) = moves
        assert Path(source).parent == Path(target).parent == tmp_path
        assert (tmp_path / "cap.xml").read_bytes() == b"<x/>"
