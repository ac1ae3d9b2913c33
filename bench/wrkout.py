"""Reading what wrk prints, and quoting text for its Lua scripts (shared by the HTTP benches)."""

from __future__ import annotations

import re


def lua_string(text: str) -> str:
    """`text` as a double-quoted Lua string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def number(out: str, pattern: str) -> float:
    """The first group of `pattern` in wrk's output, as a number."""
    found = re.search(pattern, out)
    if not found:
        raise RuntimeError(f"wrk printed no {pattern!r}:\n{out}")
    return float(found.group(1))


def latency(out: str, percentile: str) -> float:
    """A latency percentile from wrk's --latency table, in milliseconds (nan if absent)."""
    found = re.search(rf"^\s*{re.escape(percentile)}\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
    if not found:
        return float("nan")
    return float(found.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)]
