"""② Sensors: readings → smoothed figures, bands with hysteresis, calm automatic events.

`parse_rules` reads the `rules:` section; `Sensors` keeps the live picture,
decides the SEATS_CHANGED / QUEUE_CHANGED / SENSOR_LOST / SENSOR_RESTORED
events and gives the live view for status.json.
"""

from __future__ import annotations

from statusd.config.rules import RulesConfig, default_rules, parse_rules
from statusd.sensors.state import Sensors

__all__ = ["RulesConfig", "Sensors", "default_rules", "parse_rules"]
