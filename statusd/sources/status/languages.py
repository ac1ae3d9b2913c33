"""`require:` in statusd.yaml: every update carries text in these languages, or is refused."""

from __future__ import annotations

from statusd.config.load import Config
from statusd.errors import UserError
from statusd.model import Level, StatusEntry


def check(config: Config, entry: StatusEntry) -> None:
    """Refuse, in one sentence, an update that lacks a required language.

    A reopening without any message says nothing of its own and is let through;
    levels listed in require_except (an emergency, say) are exempt.
    """
    if not config.require or entry.level.value in config.require_except:
        return
    if entry.level is Level.OPEN and not entry.message:
        return
    missing = [lang for lang in config.require if not (entry.message.get(lang) or "").strip()]
    if missing:
        exempt = f"; {', '.join(config.require_except)} exempt" if config.require_except else ""
        raise UserError(
            f"this update has no text in {', '.join(missing)}, which statusd.yaml requires "
            f"({', '.join(config.require)}{exempt}); add -m {missing[0]}:…"
        )
