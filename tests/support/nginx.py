"""A private nginx with the nchan module on 127.0.0.1, running the shipped deploy/nginx/statusd.conf.

`make test` installs nginx and Debian's nchan module (tests/install-nginx.sh). Each
`Nginx` has its own prefix directory (config, pid, logs, temp files) and free ports;
it is no system service: the master runs in the foreground as this process's child
and is stopped with it. The shipped config is used as it is, with only its listen
addresses, export directory and node addresses replaced (`render`), so that what the
tests check is what a library deploys.

Usable from tests (the `Nginx` class as a context manager, or `start`/`stop`) and from
bench/ (which puts the repository on sys.path, as bench/common.py does).
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

REPO = Path(__file__).resolve().parent.parent.parent
SHIPPED = REPO / "deploy" / "nginx" / "statusd.conf"
NCHAN = Path("/usr/lib/nginx/modules/ngx_nchan_module.so")
STOP_TIMEOUT = 10.0

# What the shipped file says → what a test instance puts there; each must occur exactly `count` times.
PLACES: dict[str, tuple[str, int]] = {
    "public": (r"listen 80;", 1),
    "hub": (r"listen 127.0.0.1:8081;", 1),
    "export": (r"/var/lib/statusd/export", 1),
    "node1": (r"server 10.0.1.10:8080", 1),
    "node2": (r"server 10.0.2.10:8080", 1),
}

MAIN = """\
daemon off;
master_process on;
user root root;
worker_processes {workers};
worker_rlimit_nofile {files};
worker_shutdown_timeout 2s;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
load_module {nchan};

events {{
    worker_connections {connections};
    multi_accept on;
}}

http {{
    access_log off;
    sendfile on;
    tcp_nodelay on;
    keepalive_requests 100000;
    default_type application/octet-stream;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    nchan_shared_memory_size {shm};
    include {prefix}/statusd.conf;
}}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None)
    if found is None or not NCHAN.exists():
        raise RuntimeError("nginx with the nchan module is not installed; run tests/install-nginx.sh "
                           "(make test-deps does)")
    return found


def render(shipped: str, public: int, hub: int, export: Path, nodes: Sequence[str], reuseport: bool = False) -> str:
    """The shipped config with this instance's ports, export directory and daemons (host:port).

    `reuseport` spreads new connections evenly over the workers (for benchmarks).
    """
    first, second = (nodes[0], nodes[-1]) if nodes else ("127.0.0.1:9", "127.0.0.1:9")
    values = {
        "public": f"listen 127.0.0.1:{public}{' reuseport' if reuseport else ''};", "hub": f"listen 127.0.0.1:{hub};",
        "export": str(export), "node1": f"server {first}", "node2": f"server {second}",
    }
    text = shipped
    for name, (pattern, count) in PLACES.items():
        found = len(re.findall(re.escape(pattern), text))
        if found != count:
            raise AssertionError(f"{SHIPPED}: expected {pattern!r} {count} time(s), found {found}; "
                                 "tests/support/nginx.py's PLACES must follow the shipped file")
        text = text.replace(pattern, values[name])
    return text  # it still includes Debian's /etc/nginx/proxy_params, as on a real server


class Nginx:
    """One nginx (master + workers) on two free loopback ports: public (`url`) and hub (`hub_url`)."""

    def __init__(self, directory: Path, export: Path, nodes: Sequence[str] = (), workers: int = 1,
                 connections: int = 4096, shm: str = "64m", reuseport: bool = False) -> None:
        self.prefix = directory
        self.export = export
        self.nodes = list(nodes)
        self.workers, self.connections, self.shm = workers, connections, shm
        self.reuseport = reuseport
        # Each reader holds one descriptor in a worker; never ask for more than the hard limit.
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        self.files = connections + 1024 if hard == resource.RLIM_INFINITY else min(connections + 1024, hard)
        self.port, self.hub_port = unused_port(), unused_port()
        self._pinned = False  # once a daemon's config holds hub_url, the ports stay
        self.proc: subprocess.Popen[bytes] | None = None
        self.error_log = directory / "error.log"
        self._started_once = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def hub_url(self) -> str:
        """The `web.hub` value for statusd.yaml (read before `start`, it fixes the ports)."""
        self._pinned = True
        return f"http://127.0.0.1:{self.hub_port}/pub/{{channel}}"

    def events_url(self) -> str:
        return f"{self.url}/events"

    def start(self, timeout: float = 10.0) -> Self:
        """Start; on a first start, on other ports if the chosen ones were taken meanwhile.

        nginx cannot bind port 0 and report it, so ports are chosen ahead (at construction);
        an nginx that cannot bind exits at once, and other ports are tried unless `hub_url`
        was already handed out. A restart keeps its ports.
        """
        for _ in range(5):
            if self._launch(timeout):
                self._started_once = True
                return self
            if self._started_once or self._pinned or "Address already in use" not in self.errors():
                break
            self.port, self.hub_port = unused_port(), unused_port()
        raise RuntimeError(f"nginx could not start:\n{self.errors()}")

    def stop(self, graceful: bool = False) -> None:
        """SIGTERM (fast: connections cut, as when nginx dies) or SIGQUIT (graceful), then SIGKILL."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGQUIT if graceful else signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            # Its own process group (start_new_session): the workers go with the master.
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(STOP_TIMEOUT)

    def reload(self, timeout: float = 10.0) -> None:
        """Write the config again (new `nodes`) and SIGHUP: new workers take it, the ports stay open.

        Beware: with nchan 1.3.6 (Debian 12), workers started by a reload abort
        (spool.c:479 assertion) when many readers join a channel that existed before it;
        they are restarted and readers reconnect, but a test would see cut streams.
        Prefer choosing the nodes' ports ahead, or `restart`.
        """
        assert self.proc is not None and self.proc.poll() is None
        before = self._workers()
        self._write_config()
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = self._workers()
            if len(now - before) >= self.workers:
                return
            time.sleep(0.02)
        raise RuntimeError(f"nginx did not take its new config within {timeout} s:\n{self.errors()}")

    def _workers(self) -> set[int]:
        """The master's child processes (workers, cache helpers) by pid, from /proc."""
        assert self.proc is not None
        found: set[int] = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid:
                found.add(int(stat.parent.name))
        return found

    def restart(self) -> None:
        """Stop and start on the same ports: readers and daemons under test come back there."""
        self.stop()
        self.start()

    def errors(self) -> str:
        return self.error_log.read_text(errors="replace") if self.error_log.exists() else ""

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _write_config(self) -> Path:
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.prefix / "tmp" / sub).mkdir(parents=True, exist_ok=True)
        site = render(SHIPPED.read_text(encoding="utf-8"), self.port, self.hub_port, self.export, self.nodes,
                      self.reuseport)
        (self.prefix / "statusd.conf").write_text(site, encoding="utf-8")
        main = self.prefix / "nginx.conf"
        main.write_text(MAIN.format(
            workers=self.workers, files=self.files, prefix=self.prefix, nchan=NCHAN,
            connections=self.connections, shm=self.shm), encoding="utf-8")
        return main

    def _launch(self, timeout: float) -> bool:
        main = self._write_config()
        with (self.prefix / "nginx.out").open("ab") as out:
            self.proc = subprocess.Popen(
                [nginx_binary(), "-p", str(self.prefix), "-c", str(main), "-e", str(self.error_log)],
                stdout=out, stderr=out, start_new_session=True,
                preexec_fn=_raise_files(self.files))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if self._answers():
                return self.proc.poll() is None
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nginx did not answer within {timeout} s:\n{self.errors()}")

    def _answers(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.hub_port), timeout=0.2).close()
            urllib.request.urlopen(f"{self.url}/nonexistent-probe", timeout=1)
        except urllib.error.HTTPError:
            return True  # our server answered (404)
        except OSError:
            return False
        return True

def _raise_files(wanted: int) -> Callable[[], None]:
    """A preexec function raising the child's open-files limit (nginx's workers inherit it)."""
    def raise_limit() -> None:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        if soft != resource.RLIM_INFINITY and soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))

    return raise_limit


def unused_port() -> int:
    """A port nothing listens on now; nginx may still lose it, and `start` then tries another."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


__all__ = ["Nginx", "nginx_binary", "render", "unused_port"]
