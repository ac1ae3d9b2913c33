"""The cluster suites use the fault suite's fixtures: the fakes' fleet, the seeded random source,
the config writer and the summary ledger."""

from __future__ import annotations

from tests.faults.conftest import fault_config, fleet_factory, ledger, quiet_desk, rng  # noqa: F401 (fixtures)
