"""A TCP gate in front of the test broker: closed, it takes connections and drops them; open, it
forwards them. A client bootstrapped through a closed gate cannot reach Kafka at all, without the
shared broker being stopped (the broker's advertised address is only learnt through the gate)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator


class TcpGate:
    """Listens on 127.0.0.1:<port>; forwards to `target` only while open."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._open = threading.Event()
        self._closing = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.port = self._server.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, name="tcp-gate", daemon=True)
        self._accepting.start()

    def open(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._closing.set()
        self._accepting.join(5)
        self._server.close()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self._open.is_set():
                client.close()  # the broker is "unreachable": nothing gets through
                continue
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()
                continue
            for source, sink in ((client, upstream), (upstream, client)):
                thread = threading.Thread(target=_pipe, args=(source, sink), daemon=True)
                thread.start()
                self._threads.append(thread)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    for sock in (source, sink):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def gate_to(bootstrap_servers: str) -> Iterator[TcpGate]:
    """A closed gate in front of the first server of `bootstrap_servers`."""
    host, _, port = bootstrap_servers.split(",")[0].strip().rpartition(":")
    gate = TcpGate((host, int(port)))
    try:
        yield gate
    finally:
        gate.close()
