"""The desk API's part of the OpenAPI description served at /api/openapi.json."""

from __future__ import annotations

from typing import Any

from statusd.model import LEVELS

_JSON = "application/json"
_CHANGE = {
    "type": "object", "additionalProperties": True, "required": ["level"],
    "properties": {
        "level": {"enum": list(LEVELS)},
        "messages": {"type": "array", "maxItems": 20, "items": {"type": "string"},
                     "description": 'as typed after `statusd set -m`: "fr:Fermé"; no lang: is the default language'},
        "message": {"type": "object", "additionalProperties": {"type": "string"},
                    "description": "instead of messages: language → text"},
        "from": {"type": ["string", "null"], "description": '"YYYY-MM-DD HH:MM" or HH:MM in the site\'s time zone'},
        "until": {"type": ["string", "null"], "description": "as from"},
    },
}
SCHEMAS: dict[str, Any] = {
    "DeskChange": _CHANGE,
    "DeskPreview": {"allOf": [{"$ref": "#/components/schemas/DeskChange"},
                              {"type": "object", "required": ["target"],
                               "properties": {"target": {"type": "string", "description": "main or main/wifi"}}}]},
    "DeskOutcome": {"type": "object", "required": ["exit", "stdout", "stderr"], "properties": {
        "exit": {"type": "integer", "description": "the exit code `statusd` would return on the server"},
        "stdout": {"type": "string", "description": "what the command printed, exactly"},
        "stderr": {"type": "string"},
        "error": {"type": "string", "description": "when exit is not 0: the one sentence saying why"}}},
    "DeskLogin": {"type": "object", "required": ["account", "password"], "properties": {
        "account": {"type": "string"}, "password": {"type": "string"}, "label": {"type": "string"}}},
    "DeskToken": {"type": "object", "required": ["token", "account"], "properties": {
        "token": {"type": "string", "description": "shown once; only its hash is kept"},
        "account": {"type": "string"}, "display": {"type": "string"},
        "role": {"enum": ["desk", "lead", "admin"]}, "sites": {"type": "array", "items": {"type": "string"}}}},
    "DeskDevice": {"type": "object", "required": ["handle", "user_code", "verification_uri"], "properties": {
        "handle": {"type": "string", "description": "POST it as {\"handle\": …} to /api/v1/sso/device/token"},
        "user_code": {"type": "string"}, "verification_uri": {"type": "string"},
        "verification_uri_complete": {"type": ["string", "null"]},
        "interval": {"type": "integer"}, "expires_in": {"type": "integer"}}},
    "DeskEnrol": {"type": "object", "required": ["code", "password"], "properties": {
        "code": {"type": "string", "description": "from the link `statusd user add` printed"},
        "password": {"type": "string", "minLength": 10}}},
}


def _ref(name: str) -> dict[str, Any]:
    return {"content": {_JSON: {"schema": {"$ref": f"#/components/schemas/{name}"}}}}


def _error(text: str) -> dict[str, Any]:
    return {"description": text, **_ref("Error")}


_DENIED = {"401": _error("No token, or a revoked, expired or unknown one"),
           "403": _error("The person's role or sites do not allow this")}
_RUN = {"200": {"description": "Done; the command's output", **_ref("DeskOutcome")},
        "422": {"description": "Refused by the command (exit 2): the same sentence as on the server",
                **_ref("DeskOutcome")},
        "400": _error("Not a JSON object, or a field of the wrong type"), **_DENIED}


def _op(summary: str, body: str | None = None, responses: dict[str, Any] | None = None,
        secured: bool = True) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "tags": ["desk"], "responses": responses or _RUN}
    if secured:
        op["security"] = [{"deskToken": []}]
    if body:
        op["requestBody"] = {"required": True, **_ref(body)}
    return op


PATHS: dict[str, Any] = {
    "/api/v1/login": {"post": _op("A personal token for an account's password (throttled; a lock says until when)",
                                  "DeskLogin", {"200": {"description": "The token", **_ref("DeskToken")},
                                                "401": _error("Wrong account or password, or locked")},
                                  secured=False)},
    "/api/v1/logout": {"post": _op("Revoke the token presented", responses={"200": {"description": "Revoked"},
                                                                           **_DENIED})},
    "/api/v1/enrol": {"post": _op("Set the password with a one-time enrolment code", "DeskEnrol",
                                  {"200": {"description": "Enrolled"}, "422": _error("Unknown, used or expired")},
                                  secured=False)},
    "/api/v1/sso/device": {"post": _op(
        "`statusd login --sso`: start the identity provider's device flow (the daemon keeps its secret)",
        responses={"200": {"description": "Where to go and the code to enter", **_ref("DeskDevice")},
                   "404": _error("Single sign-on is not set up"),
                   "429": _error("Too many sign-ins started from this address"),
                   "502": _error("The identity provider could not be reached or refused")}, secured=False)},
    "/api/v1/sso/device/token": {"post": _op(
        "The personal token once the person approved at the provider",
        responses={"200": {"description": "The token", **_ref("DeskToken")},
                   "202": {"description": "Not approved yet: ask again after the interval"},
                   "403": _error("Unknown or expired sign-in, no linked account, or a disabled one")},
        secured=False)},
    "/api/v1/status": {"get": _op("`statusd show`")},
    "/api/v1/status/{site}": {"put": _op("`statusd set SITE LEVEL …`", "DeskChange")},
    "/api/v1/status/{site}/{service}": {"put": _op("`statusd set SITE/SERVICE LEVEL …`", "DeskChange")},
    "/api/v1/preview": {"post": _op("`statusd preview TARGET LEVEL …`: what each channel would post", "DeskPreview")},
    "/api/v1/undo": {"post": _op("`statusd undo`: take back the last update (desk: only its own)")},
    "/api/v1/retract/{update}": {"post": _op("`statusd retract UPDATE`")},
    "/api/v1/history": {"get": _op("`statusd history`")},
}


def extend(spec: dict[str, Any]) -> dict[str, Any]:
    """`spec` with the desk API's paths, schemas and bearer scheme added."""
    spec["paths"].update(PATHS)
    spec["components"]["schemas"].update(SCHEMAS)
    spec["components"]["securitySchemes"]["deskToken"] = {
        "type": "http", "scheme": "bearer",
        "description": "a personal token from `statusd login` (POST /api/v1/login); expires when unused"}
    return spec
