"""A reload never changes the channels under a step that is composing from them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from statusd import loading
from statusd.app import App
from tests.conftest import WriteConfig

pytestmark = pytest.mark.unit


class TestReloadTakesTheStepsTurn:
    async def test_it_waits_for_the_step_in_its_store_call(self, write_config: WriteConfig, tmp_path: Path) -> None:
        # A step holds the turn for its whole store call, where it hands out the first batch and
        # then composes the rest from the channels (announcer.py): a reload that removed one
        # meanwhile made that step raise KeyError, and the daemon stop.
        app = App(loading.load(write_config()), tmp_path / "state", 0)
        before = app.announcer
        try:
            async with app._turn:  # as a step in its store call
                reloading = asyncio.ensure_future(app.reload())
                await asyncio.sleep(0.2)
                assert not reloading.done() and app.announcer is before
            await asyncio.wait_for(reloading, 5.0)
            assert app.announcer is not before
        finally:
            await app.store.close()
