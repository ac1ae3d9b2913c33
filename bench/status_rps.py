"""/status.json requests per second at 64 connections (wrk), beside nginx serving the export.

The real daemon exports its documents to a directory (web.export_dir); nginx, run as
this user from a minimal config in a temporary directory, serves that directory's
status.json on another port of 127.0.0.1. wrk measures, in the same run: the daemon
plain, the daemon with If-None-Match (a Lua script sets the current ETag: 304s), and
nginx plain and with If-None-Match. wrk and nginx come from Debian
(`apt-get install -y wrk nginx`, done here when they are missing and we are root).

    python bench/status_rps.py --seconds 5 --connections 64
"""

from __future__ import annotations

import argparse
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from common import RunningDaemon, machine, write_config
from wrkout import latency, lua_string, number

CHANNELS = {"console": {"type": "console", "language": "en"}}
THREADS = 2  # the machine's two cores
START_TIMEOUT = 10.0

NGINX_CONF = """\
{user}worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp;
    proxy_temp_path {dir}/tmp;
    fastcgi_temp_path {dir}/tmp;
    uwsgi_temp_path {dir}/tmp;
    scgi_temp_path {dir}/tmp;
    types {{ application/json json; }}
    etag on;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ add_header Cache-Control "public, max-age=5"; }}
    }}
}}
"""

# wrk's Lua: the same GET with a conditional header.
IF_NONE_MATCH = """\
wrk.method = "GET"
wrk.headers["If-None-Match"] = {etag}
"""


def ensure_tools() -> None:
    """wrk and nginx from Debian, installed when missing (as root) or a clear error."""
    missing = [tool for tool in ("wrk", "nginx") if not _which(tool)]
    if not missing:
        return
    if os.geteuid() != 0:
        raise SystemExit(f"bench/status_rps.py needs {' and '.join(missing)}: "
                         f"apt-get install -y {' '.join(missing)}")
    subprocess.run(["apt-get", "update", "-q"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-q", *missing], check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def _which(tool: str) -> str | None:
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/usr/bin")


@dataclass(frozen=True)
class Run:
    """One wrk run's figures."""

    name: str
    requests_per_s: float
    latency_p50_ms: float
    latency_p99_ms: float
    statuses: str  # what the server answered, e.g. "200" or "304"
    errors: int


def nginx_port() -> int:
    """A port for nginx, which takes its port from its config and cannot bind 0 and say which.

    The bench runs alone on the machine, so nothing takes the port between this and nginx.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Nginx:
    """nginx serving `root` on 127.0.0.1, as this user, from a config in `work`."""

    def __init__(self, root: Path, work: Path) -> None:
        self.root, self.work, self.port = root, work, nginx_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        (self.work / "tmp").mkdir(parents=True, exist_ok=True)
        conf = self.work / "nginx.conf"
        # As root, nginx would hand its workers to `nobody`, who cannot read our 0700 temp dir.
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
        conf.write_text(NGINX_CONF.format(user=user, dir=self.work, port=self.port, root=self.root),
                        encoding="utf-8")
        self.proc = subprocess.Popen([_which("nginx") or "nginx", "-c", str(conf), "-p", str(self.work)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.proc.stderr.read().decode()}")  # type: ignore[union-attr]
            try:
                urllib.request.urlopen(f"{self.url}/status.json", timeout=1).read()
                return self
            except OSError:
                time.sleep(0.05)
        self.__exit__()
        raise RuntimeError(f"nginx did not answer within {START_TIMEOUT:g} s")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def etag_of(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        etag = response.headers.get("ETag")
    if not etag:
        raise RuntimeError(f"{url} sent no ETag")
    return str(etag)


def status_of(url: str, etag: str | None) -> str:
    request = urllib.request.Request(url, headers={"If-None-Match": etag} if etag else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return str(response.status)
    except urllib.error.HTTPError as err:
        return str(err.code)


def wrk(name: str, url: str, seconds: float, connections: int, work: Path, etag: str | None = None) -> Run:
    """One bounded wrk run; with `etag`, every request carries If-None-Match."""
    command = ["wrk", "-t", str(THREADS), "-c", str(connections), "-d", f"{seconds:g}s", "--latency"]
    if etag is not None:
        script = work / f"{name}.lua"
        script.write_text(IF_NONE_MATCH.format(etag=lua_string(etag)), encoding="utf-8")
        command += ["-s", str(script)]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True,
                         timeout=seconds + 30).stdout
    return Run(name, number(out, r"Requests/sec:\s+([\d.]+)"), latency(out, "50%"), latency(out, "99%"),
               status_of(url, etag), _errors(out))


def _errors(out: str) -> int:
    found = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return (sum(int(n) for n in found.groups()) if found else 0) + (int(non_2xx.group(1)) if non_2xx else 0)


def measure(seconds: float = 5.0, connections: int = 64) -> list[Run]:
    """The four runs, one after the other, on one daemon and one nginx."""
    ensure_tools()
    with tempfile.TemporaryDirectory(prefix="statusd-bench-rps-") as tmp:
        work = Path(tmp)
        config = write_config(work, CHANNELS)
        _add_export(config, work / "export")
        with RunningDaemon(config, work / "state") as daemon:
            exported = _wait_export(work / "export" / "status.json")
            with Nginx(exported.parent, work / "nginx") as nginx:
                daemon_url, nginx_url = f"{daemon.url}/status.json", f"{nginx.url}/status.json"
                return [
                    wrk("statusd", daemon_url, seconds, connections, work),
                    wrk("statusd-if-none-match", daemon_url, seconds, connections, work, etag_of(daemon_url)),
                    wrk("nginx", nginx_url, seconds, connections, work),
                    wrk("nginx-if-none-match", nginx_url, seconds, connections, work, etag_of(nginx_url)),
                ]


def _add_export(config: Path, directory: Path) -> None:
    """Add `web: {export_dir: ...}` to the written config."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    data = yaml.load(config.read_text(encoding="utf-8"))
    data["web"] = {"export_dir": str(directory)}
    with config.open("w", encoding="utf-8") as out:
        yaml.dump(data, out)


def _wait_export(path: Path) -> Path:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if path.exists():
            return path
        time.sleep(0.05)
    raise RuntimeError(f"the daemon exported no {path} within {START_TIMEOUT:g} s")


def rows(runs: list[Run]) -> list[tuple[str, str, str]]:
    """(figure, value, note) lines for the report."""
    return [(f"/status.json {run.name} (HTTP {run.statuses})",
             f"{run.requests_per_s:,.0f} req/s, p50 {run.latency_p50_ms:.2f} ms, p99 {run.latency_p99_ms:.2f} ms",
             f"{run.errors} errors") for run in runs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/status_rps.py", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args(argv)
    runs = measure(args.seconds, args.connections)
    print(f"/status.json with wrk, {args.connections} connections, {THREADS} threads, "
          f"{args.seconds:g} s each; {machine()}")
    for name, value, note in rows(runs):
        print(f"{name:<46} {value:>46}  {note}")
    return 0 if all(run.errors == 0 for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
