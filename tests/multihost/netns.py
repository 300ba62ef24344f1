"""Hosts made of Linux network namespaces, for the multi-host test (root only).

Every namespace is named ``fpct-<pid>-<host>`` after the test process that made it, so a
later run can tell the leftovers of a crashed one (their pid is gone) from a run in
progress. A "hub" namespace holds the bridge; each host gets one veth pair, one end as
``eth0`` in the host, the other on the bridge. Both ends are created directly inside the
namespaces: nothing, not an interface nor an address, is added to the namespace this
process started in.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

PREFIX = "fpct-"
NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
BRIDGE = "br0"


def ip(*args: str, check: bool = True) -> str:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def namespaces() -> list[str]:
    return [line.split()[0] for line in ip("netns", "list").splitlines() if line.strip()]


def owner_pid(name: str) -> int | None:
    """The pid of the test process that made namespace ``name`` (None: not one of ours)."""
    if not name.startswith(PREFIX):
        return None
    pid = name.removeprefix(PREFIX).split("-", 1)[0]
    return int(pid) if pid.isdigit() else None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pids_in(name: str) -> list[int]:
    """Every process whose network namespace is ``name``, this one aside (its main thread
    may be visiting, see :func:`entered`)."""
    found = ip("netns", "pids", name, check=False).split()
    return [int(p) for p in found if p.isdigit() and int(p) != os.getpid()]


def _left(names: Sequence[str]) -> list[int]:
    return [pid for name in names for pid in pids_in(name)]


def kill_all(names: Sequence[str], grace: float = 10.0) -> None:
    """TERM every process in the namespaces at once (a JVM then removes its own temporary
    files), and KILL what is left after ``grace``: the data goes with the folders anyway."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        for pid in _left(names):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while _left(names) and time.monotonic() < deadline:
            time.sleep(0.2)
        if not _left(names):
            return
    raise RuntimeError(f"processes left in {list(names)}: {_left(names)}")


def delete(names: Sequence[str]) -> None:
    """Stop everything in the namespaces and remove them, hosts before the hub (their veth
    ends go with them)."""
    kill_all(names)
    for name in sorted(names, key=lambda n: n.endswith("-hub")):
        ip("netns", "delete", name, check=False)


def remove_stale() -> list[str]:
    """Remove the namespaces of test processes that are gone (a crashed earlier run)."""
    stale = [n for n in namespaces() if (pid := owner_pid(n)) and not alive(pid)]
    delete(stale)
    return stale


@dataclass(frozen=True)
class Host:
    name: str  # short, e.g. "kafka-1"
    address: str  # e.g. "10.213.0.11"
    netns: str  # e.g. "fpct-1234-kafka-1"

    def command(self, cmd: Sequence[str]) -> list[str]:
        """``cmd`` run inside this host's network namespace."""
        return ["ip", "netns", "exec", self.netns, *cmd]


def make_network(token: str, hosts: dict[str, str], prefix_len: int = 24) -> list[Host]:
    """A hub with a bridge and one namespace per host, each with ``eth0`` at its address."""
    hub = f"{PREFIX}{token}-hub"
    ip("netns", "add", hub)
    ip("-n", hub, "link", "add", BRIDGE, "type", "bridge")
    ip("-n", hub, "link", "set", BRIDGE, "up")
    made = []
    for index, (name, address) in enumerate(hosts.items()):
        host = Host(name, address, f"{PREFIX}{token}-{name}")
        ip("netns", "add", host.netns)
        made.append(host)
        port = f"veth{index}"  # interface names are at most 15 characters
        ip("link", "add", "eth0", "netns", host.netns, "type", "veth",
           "peer", "name", port, "netns", hub)  # fmt: skip
        ip("-n", hub, "link", "set", port, "master", BRIDGE, "up")
        ip("-n", host.netns, "addr", "add", f"{address}/{prefix_len}", "dev", "eth0")
        ip("-n", host.netns, "link", "set", "eth0", "up")
        # Loopback too: programs that talk to themselves (the JVM, Airflow) expect it.
        ip("-n", host.netns, "link", "set", "lo", "up")
    return made


def remove_network(token: str) -> None:
    """Remove every namespace of this run, hosts before the hub."""
    delete([n for n in namespaces() if n.startswith(f"{PREFIX}{token}-")])


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def entered(host: Host) -> Iterator[None]:
    """Run the calling thread (and the threads and children it starts) on ``host``.

    A network namespace is per thread: only this one moves, and moves back on exit. Its
    sockets then reach the hosts' addresses, and its loopback is the host's own, so nothing
    here can reach a service of the machine's loopback by mistake.
    """
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(NETNS_DIR / host.netns, os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(target)
        os.close(home)
