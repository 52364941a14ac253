"""A real PostgreSQL server for the scale tests, installed and started by the suite itself.

The server is Debian's ``postgresql`` package: found under /usr/lib/postgresql/*/bin (or on PATH); when it is
missing and this process is root with apt, it is installed (``apt-get install postgresql``). PostgreSQL refuses
to run as root, so as root the cluster belongs to the ``postgres`` user the package creates. The cluster lives in
a temporary folder, listens on a free loopback port, trusts local connections (nothing here is reachable from
outside), and runs with fsync off: it is a test server, stopped and removed afterwards.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


class NoPostgres(RuntimeError):
    """No PostgreSQL server could be found or installed here."""


def _bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    raise NoPostgres("no initdb under /usr/lib/postgresql/*/bin or on PATH")


def binaries() -> Path:
    """The folder of PostgreSQL's server programs, installing Debian's package when it can."""
    with contextlib.suppress(NoPostgres):
        return _bin()
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-q", "postgresql"], env=env, check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)  # fmt: skip
        if subprocess.run(["sh", "-c", "ls /usr/lib/postgresql/*/bin/initdb"], capture_output=True).returncode:
            subprocess.run(["apt-get", "update", "-q"], env=env, check=False, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=600)  # fmt: skip
            subprocess.run(["apt-get", "install", "-y", "-q", "postgresql"], env=env, check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)  # fmt: skip
    return _bin()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(*, max_connections: int = 300) -> Iterator[str]:
    """A fresh PostgreSQL server; yields the URL of its database ``billkit`` (user ``billkit``, no password)."""
    bindir = binaries()
    root = Path(tempfile.mkdtemp(prefix="billkit-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
    port = _free_port()

    def run(*cmd: str) -> None:
        subprocess.run([*as_user, *cmd], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    run(str(bindir / "initdb"), "-D", str(data), "-U", "billkit", "-A", "trust", "-E", "UTF8", "--no-sync")
    log = root / "server.log"
    log_file = log.open("wb")
    proc = subprocess.Popen(
        [*as_user, str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-h", "127.0.0.1", "-k", str(sock),
         "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
         "-c", f"max_connections={max_connections}"],
        stdout=subprocess.DEVNULL, stderr=log_file,
    )  # fmt: skip
    try:
        end = time.monotonic() + 60
        while True:
            ready = subprocess.run([str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                                   capture_output=True)  # fmt: skip
            if ready.returncode == 0:
                break
            if proc.poll() is not None or time.monotonic() > end:
                raise NoPostgres(f"postgres did not start: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)
        subprocess.run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "billkit", "billkit"],
                       check=True, capture_output=True)  # fmt: skip
        yield f"postgresql://billkit@127.0.0.1:{port}/billkit"
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
        if proc.poll() is None:
            proc.kill()
        log_file.close()
        shutil.rmtree(root, ignore_errors=True)
