"""Detached local service processes: pid files, ports, logs and a clean stop.

Shared by the Kafka and MongoDB launchers.  A service started here runs in its own session, so it
outlives the command that started it (``parivision up``) and is found again through its pid file.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


class ServiceError(RuntimeError):
    """A service could not be started, reached or stopped.

    The message names the service, its address and what the user can do about it.
    """

    def __init__(self, service: str, address: str, problem: str, hint: str = "") -> None:
        self.service = service
        self.address = address
        message = f"{service} at {address}: {problem}"
        if hint:
            message += f"\n  what to do: {hint}"
        super().__init__(message)


@dataclass(frozen=True)
class LocalProcess:
    """Where one local service keeps its pid and log, and how to recognise its process."""

    name: str
    pid_file: Path
    log_file: Path
    # A string that appears in the service's command line; guards against a recycled pid.
    marker: str

    def read_pid(self) -> int | None:
        """The pid in the pid file if that process is alive and is ours; removes a stale file."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            with contextlib.suppress(FileNotFoundError):
                self.pid_file.unlink()
            return None
        if pid_alive(pid) and cmdline_has(pid, self.marker):
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    def spawn(self, argv: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> int:
        """Start ``argv`` detached (new session), log to the log file, write the pid file."""
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            log.write(f"---- parivision: starting {self.name} at {time.ctime()}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        self.pid_file.write_text(f"{proc.pid}\n")
        return proc.pid

    def stop(self, timeout: float) -> bool:
        """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL. True if a process was stopped."""
        pid = self.read_pid()
        if pid is None:
            return False
        terminate(pid, timeout)
        self.pid_file.unlink(missing_ok=True)
        return True

    def log_offset(self) -> int:
        try:
            return self.log_file.stat().st_size
        except FileNotFoundError:
            return 0

    def log_tail(self, since: int = 0, lines: int = 25) -> str:
        """The last ``lines`` lines the service logged after byte offset ``since``."""
        try:
            with open(self.log_file, "rb") as f:
                f.seek(since)
                text = f.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return "(no log file)"
        tail = text.strip().splitlines()[-lines:]
        return "\n".join("    " + line for line in tail) or "    (log is empty)"


def pid_alive(pid: int) -> bool:
    """True if ``pid`` runs and is not a zombie (reaps it if it is our own exited child)."""
    with contextlib.suppress(ChildProcessError, OSError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust kill(0)
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def cmdline_has(pid: int, marker: str) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return not Path("/proc").is_dir()  # no /proc on this OS: cannot tell, assume ours
    except OSError:
        return False
    return marker in cmdline


def terminate(pid: int, timeout: float) -> None:
    """Stop ``pid`` and its session: SIGTERM first so the service shuts down cleanly."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if wait_until(lambda: not pid_alive(pid), timeout):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)  # the service is its session's leader, pgid == pid
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not pid_alive(pid), 10)


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if a server could bind ``host:port`` now (TIME_WAIT leftovers do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def tcp_reachable(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def split_host_port(address: str, default_port: int) -> tuple[str, int]:
    """``"host:port"`` (or ``"[v6]:port"``, or a bare host) as a tuple."""
    address = address.strip()
    if "://" in address:  # e.g. PLAINTEXT://host:port
        address = address.split("://", 1)[1]
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        return host, int(rest.lstrip(":") or default_port)
    host, sep, port = address.rpartition(":")
    if not sep:
        return address, default_port
    return host, int(port)


def redact_uri(uri: str) -> str:
    """``uri`` with any password replaced by ``***``, safe to print or log."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


@contextlib.contextmanager
def locked(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive lock so two ``up``/``down`` calls on one home do not race."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, the pid files still keep things mostly right
        yield
        return
    with open(lock_file, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def who_listens(port: int) -> str | None:
    """Best effort: ``"pid N (command …)"`` of the process listening on ``port`` (Linux only)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            listening = len(fields) > 9 and fields[3] == "0A"  # 0A: TCP_LISTEN
            if listening and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    for proc_dir in Path("/proc").iterdir():
        if not proc_dir.name.isdigit():
            continue
        try:
            for fd in (proc_dir / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    cmd = (proc_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                    cmd = cmd.strip()
                    return f"pid {proc_dir.name} ({cmd[:120]}{'…' if len(cmd) > 120 else ''})"
        except OSError:
            continue
    return None
