"""A PostgreSQL server that asks every client for its password and refuses it.

The tests' own cluster trusts every local connection (``initdb -A trust``), so it never asks
for a password; what a user sees when theirs does is tested against this stand-in: it speaks
just enough of the wire protocol on a Unix socket (``.s.PGSQL.5432`` in ``folder``) to answer
each startup with AuthenticationCleartextPassword, and each password with SQLSTATE 28P01
(``password authentication failed``). ``passwords`` lists what clients sent, so a test can
see that $DOORFIX_JOURNAL_PASSWORD reached the server and was not printed.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

PORT = 5432
#: AuthenticationCleartextPassword
ASK_PASSWORD = b"R" + struct.pack("!ii", 8, 3)
REFUSED = (
    b"SFATAL\0VFATAL\0C28P01\0M" + b'password authentication failed for user "doorfix"' + b"\0\0"
)


class PasswordServer:
    """What a refusing server heard: the passwords clients sent (``None``: none was sent)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.passwords: list[str | None] = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(str(folder / f".s.PGSQL.{PORT}"))
        self._sock.listen(8)
        self._thread = threading.Thread(target=self._serve, name="pg-password", daemon=True)

    @property
    def url(self) -> str:
        return f"postgresql://doorfix@/doorfix?host={self.folder}&port={PORT}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # closed
            with conn, contextlib.suppress(OSError):
                self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        (length,) = struct.unpack("!i", _read(conn, 4))
        _read(conn, length - 4)  # the startup packet: protocol, user, database
        conn.sendall(ASK_PASSWORD)
        kind = conn.recv(1)
        if kind != b"p":  # libpq hung up: it had no password to send
            self.passwords.append(None)
            return
        (length,) = struct.unpack("!i", _read(conn, 4))
        self.passwords.append(_read(conn, length - 4).rstrip(b"\0").decode())
        conn.sendall(b"E" + struct.pack("!i", 4 + len(REFUSED)) + REFUSED)


def _read(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise OSError("client hung up")
        data += chunk
    return data


@contextlib.contextmanager
def password_server(folder: Path) -> Iterator[PasswordServer]:
    """A refusing server on a Unix socket in ``folder`` until the block ends."""
    server = PasswordServer(folder)
    server._thread.start()
    try:
        yield server
    finally:
        with contextlib.suppress(OSError):
            server._sock.shutdown(socket.SHUT_RDWR)  # wakes its accept()
        server._sock.close()
        server._thread.join(5)
