"""`cluster:` and `sensors:` in statusd.yaml: checked at load, every mistake located."""

from __future__ import annotations

import pytest

from statusd import loading
from statusd.errors import ConfigError
from tests.conftest import WriteConfig

pytestmark = pytest.mark.unit


class TestClusterSection:
    """A node's name, its lease and shared sensors; the host's name when no node is given."""

    def test_defaults(self, write_config: WriteConfig) -> None:
        config = loading.load(write_config())
        assert (config.cluster.lease, config.cluster.shared_sensors) == (5.0, False)
        assert config.cluster.node_name

    def test_given(self, write_config: WriteConfig) -> None:
        path = write_config()
        path.write_text(path.read_text() + "cluster: {node: branch-a, lease: 8s}\nsensors: {shared: true}\n")
        config = loading.load(path)
        assert (config.cluster.node_name, config.cluster.lease, config.cluster.shared_sensors) == ("branch-a", 8.0, True)

    @pytest.mark.parametrize(("text", "expected"), [
        ("cluster: {node: 'a b'}", "cluster.node: should be a short name"),
        ("cluster: {lease: 1s}", "cluster.lease: should be between 2s and 60s, got 1s"),
        ("cluster: {leader: x}", "cluster.leader: unknown key"),
        ("sensors: {shared: yes please}", "sensors.shared: should be true or false"),
    ])
    def test_mistakes(self, write_config: WriteConfig, text: str, expected: str) -> None:
        path = write_config()
        path.write_text(path.read_text() + text + "\n")
        with pytest.raises(ConfigError) as err:
            loading.load(path)
        assert any(expected in str(p) for p in err.value.problems), [str(p) for p in err.value.problems]
