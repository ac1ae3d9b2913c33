"""Where a push may go: a push service named on the public internet, never this host or its network.

A subscription's endpoint is whatever a stranger posted to the subscribe API, and
the fan-out sends a request to each one; unchecked, the daemon would POST to
169.254.169.254, localhost or the library's intranet for anyone who asked. So an
endpoint must be https:// with a DNS name (no address literal, no local name), the
name must resolve to public addresses only (`PublicResolver`, at send time), and a
redirect is never followed. `loopback` (the `loopback_endpoints` option) lets
http://127.0.0.1:PORT through, for tests and a local push service.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

# Names that never reach the internet (RFC 6761, RFC 6762, RFC 8375 and common intranet habits).
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".intranet", ".lan", ".home.arpa", ".corp",
                   ".localdomain", ".test", ".invalid", ".example")


def public_name(host: str) -> bool:
    """True for a DNS name that may be on the internet: dotted, not local, not an address in disguise."""
    name = host.lower().rstrip(".")
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        return False  # push services are reached by name, never by address
    if "." not in name or name == "localhost" or ("." + name).endswith(_LOCAL_SUFFIXES):
        return False
    # A last label of digits (127.1, 0x7f.1) is an address that getaddrinfo would still take.
    last = name.rsplit(".", 1)[-1]
    return bool(last) and not last.isdigit() and not last.startswith("0x")


def public_address(address: str) -> bool:
    """True for an IP address on the public internet (not loopback, private, link-local, reserved…)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def sendable(endpoint: str, *, loopback: bool) -> bool:
    """True when the fan-out may send to `endpoint` (checked again at send time: old rows too)."""
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError:
        return False
    if parts.username is not None or parts.password is not None or not parts.hostname:
        return False
    if parts.scheme == "http":
        return loopback and parts.hostname == "127.0.0.1" and port is not None
    return parts.scheme == "https" and public_name(parts.hostname)


class PublicResolver(AbstractResolver):
    """aiohttp's resolver, keeping only public addresses: a name that points inside is unreachable."""

    def __init__(self) -> None:
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
                      ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        kept = [entry for entry in found if public_address(str(entry["host"]))]
        if not kept:
            raise OSError(f"{host} resolves only to addresses on this host or its network")
        return kept

    async def close(self) -> None:
        await self._inner.close()
