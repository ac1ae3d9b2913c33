"""Hand-made peers of the status socket, run as another user by the hostile tests (standard library only).

It speaks the protocol of statusd/commands/handoff.py byte for byte: one line `set {json}\\n`, one answer
line (`here\\n`, or a JSON object with exit, stdout, stderr and made). Two roles:

    python handoff_peer.py ask SOCKET LINE [STATUS]   # a client: LINE's "@DIGEST@" becomes the digest of
                                                  # the config it names, "@STATUS@" that of STATUS, each
                                                  # read by this user (or "unreadable")
    python handoff_peer.py serve SOCKET ANSWER    # a fake daemon: binds SOCKET (0666), prints "listening",
                                                  # answers ANSWER (one line) to each of up to 4 requests

`ask` prints one JSON line: {"answer": "<the answer line>", "digest_read": true|false}.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
from typing import Any

HERE = "here\n"
DIGEST = "@DIGEST@"
STATUS = "@STATUS@"


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def made(answer: str) -> dict[str, Any] | None:
    """The daemon's JSON answer, or None for `here`, nothing, or anything else."""
    try:
        found = json.loads(answer)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def request_line(config_path: str, config_digest: str = DIGEST, status_digest: str = STATUS,
                 **fields: Any) -> bytes:
    """The `set {json}\\n` line the real command sends (its keys in its order)."""
    body = {"config": config_path, "config_digest": config_digest, "status_digest": status_digest,
            "target": "main", "level": "closed",
            "message": ["fr:fermé par mallory"], "starts": None, "until": None, "by": "mallory",
            "at": 1_800_000_000.0}
    body.update(fields)
    return b"set " + json.dumps(body).encode("ascii") + b"\n"


def read_line(sock: socket.socket, limit: int = 1 << 26) -> bytes:
    data = b""
    while not data.endswith(b"\n") and len(data) < limit:
        chunk = sock.recv(1 << 16)
        if not chunk:
            break
        data += chunk
    return data


def converse(path: str, line: bytes, wait: float = 10.0) -> str:
    """Send `line` on a new connection to `path`; the answer line ("" when closed or timed out)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(wait)
    try:
        sock.connect(path)
        sock.sendall(line)
        return read_line(sock).decode("ascii", "replace")
    except OSError:
        return ""
    finally:
        sock.close()


def ask(path: str, line: str, status: str | None = None) -> dict[str, Any]:
    read = False
    if DIGEST in line:
        body = json.loads(line.removeprefix("set "))
        value = _digest_of(body["config"])
        read = value != "unreadable"
        line = line.replace(DIGEST, value)
    if STATUS in line and status is not None:
        line = line.replace(STATUS, _digest_of(status))
    return {"answer": converse(path, line.encode("ascii") + b"\n"), "digest_read": read}


def _digest_of(path: str) -> str:
    """The digest of the file's text as this user reads it, or "unreadable"."""
    try:
        with open(path, encoding="utf-8") as file:
            return digest(file.read())
    except OSError:
        return "unreadable"


def serve(path: str, answer: str) -> None:
    if os.path.lexists(path):
        os.unlink(path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    os.chmod(path, 0o666)  # noqa: S103 (anybody may connect: the fake's bait)
    server.listen(8)
    server.settimeout(60)
    print("listening", flush=True)
    for _ in range(4):
        try:
            conn, _ = server.accept()
        except OSError:
            return
        print(json.dumps({"connected": True}), flush=True)
        with conn:
            conn.settimeout(5)
            try:
                request = read_line(conn, 1 << 20)
                conn.sendall(answer.encode("ascii") + b"\n")
            except OSError:
                continue
        print(json.dumps({"request": request.decode("ascii", "replace")}), flush=True)


def main(argv: list[str]) -> int:
    role, path, text = argv[0], argv[1], argv[2]
    if role == "ask":
        print(json.dumps(ask(path, text, argv[3] if len(argv) > 3 else None)), flush=True)
    else:
        serve(path, text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
