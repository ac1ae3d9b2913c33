"""Fixtures for the tests against a real Synapse: the server (one per module), two accounts, fresh rooms."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from tests.matrix.server import Account, Synapse, running_synapse

_rooms = itertools.count()


@pytest.fixture(scope="module")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synapse]:
    """One Synapse for the test module (it starts in a few seconds)."""
    with running_synapse(tmp_path_factory.mktemp("synapse")) as server:
        yield server


@pytest.fixture(scope="module")
def bot(synapse: Synapse) -> Account:
    """The account statusd posts as."""
    return synapse.register("librarybot")


@pytest.fixture(scope="module")
def reader(synapse: Synapse) -> Account:
    """A patron in the room: what they see is what a test checks."""
    return synapse.register("patron")


@pytest.fixture
def room(synapse: Synapse, bot: Account, reader: Account) -> tuple[str, str]:
    """A fresh public room made by the bot, joined by the reader: (alias, room id)."""
    name = f"biblio{next(_rooms)}"
    room_id = synapse.create_room(bot, name)
    join(synapse, reader, room_id)
    return f"#{name}:localhost", room_id


def join(synapse: Synapse, account: Account, room_id: str) -> None:
    synapse.call("POST", f"/_matrix/client/v3/join/{quote(room_id)}", {}, account.access_token)


def fresh_room_name() -> str:
    return f"room{next(_rooms)}"
