"""The Jinja2 environment templates run in: no Python internals, no files outside
alerts/, and no value big enough to exhaust the daemon's memory or time."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jinja2 import BaseLoader, Environment, FileSystemLoader, StrictUndefined, TemplateNotFound
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

# No message needs more: a template asking for more is a mistake or an attack.
MAX_SIZE = 10_000
MAX_EXPONENT = 64


class ConfinedLoader(FileSystemLoader):
    """Loads templates from one directory only: a symlink or `..` pointing out is not followed.

    Otherwise whoever may edit alerts/ could link a credential file in and
    have it posted publicly.
    """

    def __init__(self, directory: Path) -> None:
        super().__init__(str(directory))
        self.root = directory.resolve()

    def get_source(self, environment: Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        source, filename, uptodate = super().get_source(environment, template)
        if not Path(filename).resolve().is_relative_to(self.root):
            raise TemplateNotFound(template)
        return source, filename, uptodate


class Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, also refusing calls and arithmetic that would build a huge value."""

    intercepted_binops = frozenset({"*", "**"})

    def __init__(self, loader: BaseLoader) -> None:
        super().__init__(loader=loader, undefined=StrictUndefined, autoescape=False,
                         trim_blocks=True, lstrip_blocks=True)
        # Generators of arbitrary text or state have no place in a status message.
        for name in ("lipsum", "cycler", "joiner"):
            self.globals.pop(name, None)
        # Filters are called directly by compiled templates, not through call().
        self.filters = {name: _bounded(func) for name, func in self.filters.items()}

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int) and abs(right) > MAX_EXPONENT:
            raise SecurityError("exponent too large for a template")
        if operator == "*" and (_huge(left, right) or _huge(right, left)):
            raise SecurityError("repetition too large for a template")
        return super().call_binop(context, operator, left, right)

    def call(self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        # str.ljust(10**9), range(10**9): refuse any big number handed to a call.
        _check_sizes(args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)


def _check_sizes(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SIZE:
            raise SecurityError(f"a template may not ask for {value}: more than {MAX_SIZE}")


def _bounded(func: Callable[..., Any]) -> Callable[..., Any]:
    """`func` as a filter that refuses a huge width or count (|center(10**9), |indent(10**9))."""
    # The filtered value itself may be any number; only the arguments after it are sizes.
    skip = 2 if hasattr(func, "jinja_pass_arg") else 1

    @functools.wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        _check_sizes(args[skip:], kwargs)
        return func(*args, **kwargs)

    return bounded


def _huge(sequence: Any, times: Any) -> bool:
    return (isinstance(sequence, (str, list, tuple)) and isinstance(times, int)
            and max(len(sequence), 1) * times > 100_000)
