"""Recognisable secrets, and a scanner that finds them in any output, in every form they travel in.

A secret is `SECRET-<hex>+/=`: the hex part is unique, so a fragment of it
found anywhere (a token cut to 200 characters, a URL-encoded or JSON-escaped
copy) is a leak; the `+/=` make the URL-encoded form differ from the raw one.
Base64 forms are searched too: a Basic Authorization header, and a bare token.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, quote_plus

# Long enough to be unique, short enough to catch a secret shortened for display.
FRAGMENT = 12
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass(frozen=True)
class Secret:
    """One secret value, where it is configured, and the user name it may be sent with (Basic auth)."""

    name: str
    value: str
    username: str | None = None

    @property
    def fragment(self) -> str:
        hexpart = self.value.split("SECRET-", 1)[1]
        return hexpart[:FRAGMENT]

    def forms(self) -> dict[str, str]:
        """Every spelling of this secret worth looking for: raw, encoded, and base64."""
        raw = self.value.encode()
        found = {
            "raw": self.value,
            "fragment": self.fragment,
            "url-encoded": quote(self.value, safe=""),
            "form-encoded": quote_plus(self.value),
            "base64": base64.b64encode(raw).decode(),
            "base64url": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        }
        if self.username is not None:
            found["basic-auth"] = base64.b64encode(f"{self.username}:{self.value}".encode()).decode()
        return found


def make_secret(name: str, prefix: str = "", username: str | None = None) -> Secret:
    return Secret(name, f"{prefix}SECRET-{uuid.uuid4().hex}+/=", username)


@dataclass
class Scanner:
    """Collects every place where one of `secrets` shows, in any of its forms."""

    secrets: Iterable[Secret]
    findings: list[str] = field(default_factory=list)
    scanned: dict[str, int] = field(default_factory=dict)

    def scan(self, where: str, output: str | bytes | None) -> None:
        text = _text(output)
        self.scanned[where] = self.scanned.get(where, 0) + len(text)
        for secret in self.secrets:
            for form, spelling in secret.forms().items():
                at = text.find(spelling)
                if at >= 0:
                    context = text[max(0, at - 120): at + len(spelling) + 40].replace("\n", "⏎")
                    self.findings.append(f"{where}: {secret.name} ({form}) in …{context}…")

    def scan_all(self, outputs: Mapping[str, str | bytes | None]) -> None:
        for where, output in outputs.items():
            self.scan(where, output)

    def report(self) -> str:
        return "secrets leaked:\n" + "\n".join(self.findings)


def _text(output: str | bytes | None) -> str:
    if output is None:
        return ""
    if isinstance(output, bytes):
        output = output.decode("utf-8", errors="replace")
    return _ANSI.sub("", output)
