"""Who holds a TCP port, so a clash can be reported by name instead of as a crash."""

from __future__ import annotations

import socket

import psutil

from flightpipe.stack.errors import StackError


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_owner(port: int) -> str:
    """Best-effort description of the process listening on ``port``."""
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                if conn.pid is None:
                    return "an unknown process"
                proc = psutil.Process(conn.pid)
                return f"pid {conn.pid} ({' '.join(proc.cmdline()[:3])})"
    except (psutil.Error, PermissionError):
        pass
    return "an unknown process"


def require_free(port: int, service: str, setting: str) -> None:
    if not port_is_free(port):
        raise StackError(
            f"Port {port} for {service} is already taken by {port_owner(port)}. "
            f"Stop that process, or choose another port with {setting}=<port>."
        )
