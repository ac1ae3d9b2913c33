"""The OpenAPI 3.1 description of the ingest API, served at /api/openapi.json.

Built from the same field lists and limits that payload.py checks against,
so the description cannot drift from what the server accepts.
"""

from __future__ import annotations

from typing import Any

from statusd.sources.feeds.payload import FUTURE, MAX_BATCH, OVERCOUNT, PAST

_TIME = {"oneOf": [{"type": "string", "format": "date-time"}, {"type": "number"}],
         "description": "ISO 8601 (a time without offset is the site's local time) or Unix seconds; "
                        f"default now; at most {int(FUTURE.total_seconds() // 60)} min ahead and "
                        f"{int(PAST.total_seconds() // 3600)} h old"}
_COUNT = {"type": "integer", "minimum": 0}
_COMMON = {
    "site": {"type": "string", "description": "a site id from statusd.yaml"},
    "at": _TIME,
    "sensor": {"type": "string", "maxLength": 500, "description": "the device's own id, kept with the reading"},
}


def _reading(kind: str, required: list[str], properties: dict[str, Any], text: str) -> dict[str, Any]:
    return {
        "type": "object", "description": text, "additionalProperties": False,
        "required": ["site", *required],
        "properties": {"kind": {"const": kind, "description": "may be left out when the fields tell"},
                       **_COMMON, **properties},
    }


SCHEMAS: dict[str, Any] = {
    "Seats": _reading("seats", ["zone"], {
        "zone": {"type": "string"},
        "occupied": _COUNT,
        "capacity": {"type": "integer", "minimum": 1, "description": "default: the zone's capacity in statusd.yaml"},
        "percent": {"type": "number", "minimum": 0, "maximum": 100, "description": "instead of occupied"},
    }, f"Seats occupied in a zone: occupied or percent; occupied may not exceed {OVERCOUNT} × capacity."),
    "Queue": _reading("queue", ["queue"], {
        "queue": {"type": "string"},
        "length": _COUNT,
        "wait_minutes": {"type": "number", "minimum": 0, "maximum": 1440},
        "throughput_per_hour": {"type": "number", "minimum": 0, "description": "admissions per hour"},
    }, "An entrance queue: length, wait_minutes or both."),
    "Gates": _reading("gates", ["zone", "in", "out"], {
        "zone": {"type": "string"}, "in": _COUNT, "out": _COUNT,
    }, "A gate counter's cumulative totals; statusd turns them into occupancy."),
    "Status": _reading("status", ["level"], {
        "zone": {"type": "string"},
        "level": {"enum": ["open", "limited", "closed", "emergency"]},
        "reason": {"type": "string", "description": "required unless level is open"},
    }, "A building system setting a site's or zone's status (the feed must allow status)."),
    "Batch": {"type": "object", "additionalProperties": False, "required": ["readings"],
              "properties": {"readings": {"type": "array", "minItems": 1, "maxItems": MAX_BATCH,
                                          "items": {"$ref": "#/components/schemas/Reading"}}}},
    "Reading": {"oneOf": [{"$ref": f"#/components/schemas/{n}"} for n in ("Seats", "Queue", "Gates", "Status")]},
    "Accepted": {"type": "object", "required": ["accepted"], "properties": {"accepted": {"type": "integer"}}},
    "Error": {"type": "object", "required": ["error", "field"], "properties": {
        "error": {"type": "string", "description": "one sentence saying what is wrong"},
        "field": {"type": "string", "description": 'the field at fault, e.g. "readings[3].occupied"; may be empty'},
    }},
}


def _error(text: str) -> dict[str, Any]:
    return {"description": text, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def openapi() -> dict[str, Any]:
    """The ingest API's OpenAPI document (the desk adds its own paths to it)."""
    body = {"oneOf": [{"$ref": "#/components/schemas/Reading"}, {"$ref": "#/components/schemas/Batch"}]}
    return {
        "openapi": "3.1.0",
        "info": {"title": "statusd ingest API", "version": "1",
                 "description": "Sensor readings pushed to statusd: seats, queues, gate counters and "
                                "building systems' status. A batch is stored whole or not at all."},
        "paths": {"/api/v1/readings": {"post": {
            "summary": "Push one reading or a batch",
            "security": [{"feedToken": []}],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": body,
                "examples": {
                    "seats": {"value": {"site": "main", "zone": "floor2", "occupied": 120}},
                    "batch": {"value": {"readings": [
                        {"site": "main", "queue": "entrance", "length": 40, "throughput_per_hour": 90},
                        {"site": "main", "zone": "floor2", "in": 1520, "out": 1311}]}},
                    "closure": {"value": {"kind": "status", "site": "main", "level": "closed",
                                          "reason": "fire alarm"}},
                }}}},
            "responses": {
                "202": {"description": "Stored", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Accepted"}}}},
                "400": _error("Malformed: not JSON, a wrong type, a missing or unknown field"),
                "401": _error("No token, or not the token of a configured feed"),
                "403": _error("The feed may not send this kind of reading (see its allow list)"),
                "413": _error(f"Body over 1 MiB or more than {MAX_BATCH} readings"),
                "415": _error("Content-Type is not application/json"),
                "422": _error("Well formed but not possible: unknown site or zone, a negative count, "
                              "a percent over 100, a time in the future or over a day old"),
            },
        }}},
        "components": {
            "schemas": dict(SCHEMAS),
            "securitySchemes": {"feedToken": {"type": "http", "scheme": "bearer",
                                              "description": "the token of one feed in statusd.yaml"}},
        },
    }
