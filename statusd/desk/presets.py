"""alerts/presets.yaml: ready-made messages the desk page offers with one tap."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from statusd.model import LEVELS

log = structlog.get_logger()
MAX_BYTES = 256 * 1024


@dataclass(frozen=True)
class Preset:
    """A level and a message per language, with a short label per language."""

    id: str
    level: str
    label: Mapping[str, str]
    message: Mapping[str, str]


def load(alerts_dir: Path) -> dict[str, Preset]:
    """The presets; a missing or broken file gives none (and a warning naming it), never a crash."""
    path = alerts_dir / "presets.yaml"
    try:
        if path.stat().st_size > MAX_BYTES:
            raise ValueError(f"over {MAX_BYTES} bytes")
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, YAMLError) as err:
        log.warning("presets_unreadable", file=str(path), reason=type(err).__name__)
        return {}
    presets = {}
    for key, item in (data or {}).items() if isinstance(data, dict) else ():
        preset = _preset(str(key), item)
        if preset is None:
            log.warning("preset_skipped", file=str(path), preset=str(key),
                        reason="needs level (open, limited, closed, emergency) and message per language")
        else:
            presets[preset.id] = preset
    return presets


def _preset(key: str, item: object) -> Preset | None:
    if not isinstance(item, dict) or item.get("level") not in LEVELS:
        return None
    message, label = item.get("message"), item.get("label", {key: key})
    if not isinstance(message, dict) or not isinstance(label, dict):
        return None
    return Preset(key, str(item["level"]), {str(k): str(v) for k, v in label.items()},
                  {str(k): str(v) for k, v in message.items()})
