"""A TCP proxy on 127.0.0.1 that puts a server farther away: what passes each way is held for
`one_way` seconds (a request and its answer cost 2 x one_way more: 0.025 gives a 50 ms round trip).
This machine's kernel has no netem qdisc, so the delay is added here. Threads only; stop() closes
the listening socket and every connection.
"""

import collections
import socket
import threading
import time


class DelayProxy:
    def __init__(self, target_host, target_port, one_way):
        self.target = (target_host, target_port)
        self.one_way = one_way
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets = []
        self._stopped = threading.Event()
        threading.Thread(target=self._accept, name="delay-proxy", daemon=True).start()

    def _accept(self):
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                _Direction(source, sink, self.one_way, self._stopped).start()

    def stop(self):
        self._stopped.set()
        for sock in [self._listener, *self._sockets]:
            try:
                sock.close()
            except OSError:
                pass


class _Direction:
    """One direction of one connection: a reader that stamps each chunk and a writer that sends
    it once its delay is over (in order: the delay is the same for every chunk)."""

    def __init__(self, source, sink, delay, stopped):
        self.source, self.sink, self.delay, self.stopped = source, sink, delay, stopped
        self.chunks = collections.deque()
        self.ready = threading.Condition()

    def start(self):
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._write, daemon=True).start()

    def _read(self):
        while True:
            try:
                data = self.source.recv(65536)
            except OSError:
                data = b""
            with self.ready:
                self.chunks.append((time.monotonic() + self.delay, data))
                self.ready.notify()
            if not data:
                return

    def _write(self):
        while not self.stopped.is_set():
            with self.ready:
                while not self.chunks:
                    self.ready.wait()
                due, data = self.chunks.popleft()
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            try:
                if not data:
                    self.sink.shutdown(socket.SHUT_WR)
                    return
                self.sink.sendall(data)
            except OSError:
                return
