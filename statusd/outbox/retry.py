"""When to try a failed delivery again: exponential backoff with jitter."""

from __future__ import annotations

import random

from statusd.config.types import DeliveryConfig


def backoff(
    attempts: int, policy: DeliveryConfig, retry_after: float | None, rng: random.Random | None = None
) -> float:
    """Seconds to wait before attempt number `attempts + 1`.

    Full jitter on an exponential curve spreads retries from many channels;
    a platform's own `retry_after` (429, Retry-After) is a floor, never shortened.
    """
    uniform = rng.uniform if rng is not None else random.uniform
    ceiling = min(policy.backoff_max, policy.backoff * 2 ** max(0, attempts - 1))
    wait: float = ceiling / 2 + uniform(0, ceiling / 2)
    return max(wait, retry_after or 0.0)
