"""A throwaway S3 for tests: the moto server as a subprocess on a free loopback port.

One server serves the whole test session (see the fixtures at the end of ``tests/conftest.py``);
tests that need to take S3 away start a second, private one with :class:`MotoServer` and stop
it themselves, so the session's server is never disturbed. Only the standard library is imported
here; boto and s3fs are imported when a bucket is made.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from types import TracebackType
from typing import IO, Any

__all__ = ["MotoServer", "create_bucket", "free_port", "storage_options", "unique_bucket_name"]

MOTO_SERVER = Path(sys.executable).with_name("moto_server")
STARTUP_SECONDS = 20.0
STOP_SECONDS = 5.0


def free_port() -> int:
    """A loopback port nobody listens on right now (the kernel's choice for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class MotoServer:
    """``moto_server`` in its own process group, so stopping it takes every child with it."""

    def __init__(self, log: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self._log_handle: IO[bytes] | None = None

    def start(self, timeout: float = STARTUP_SECONDS) -> MotoServer:
        """Start the server and wait until it answers HTTP; raises if it dies or never does."""
        self._log_handle = self.log.open("ab")
        self.process = subprocess.Popen(
            [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(self.port)],
            stdin=subprocess.DEVNULL,
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"moto_server exited at start: {self.log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"moto_server did not answer on {self.endpoint} in {timeout}s")
            time.sleep(0.05)
        return self

    def answers(self) -> bool:
        """Whether the server answers an HTTP request right now."""
        try:
            with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=0.5):
                return True
        except urllib.error.HTTPError:
            return True  # it answered, even if not with 200
        except OSError:
            return False

    def stop(self) -> None:
        """Kill the server's whole process group and reap it; safe to call twice."""
        process, self.process = self.process, None
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=STOP_SECONDS)
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None

    def __enter__(self) -> MotoServer:
        return self if self.process is not None else self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def storage_options(endpoint: str) -> dict[str, Any]:
    """fsspec options for the test server: dummy keys, and fail fast when it is unreachable.

    A fresh dict each call: botocore rewrites the ``retries`` mapping it is given in place.
    """
    return {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        "config_kwargs": {
            "connect_timeout": 1,
            "read_timeout": 5,
            "retries": {"max_attempts": 1},
        },
    }


def unique_bucket_name(prefix: str = "test") -> str:
    """A valid, unused bucket name (3-63 lowercase letters, digits and hyphens)."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def create_bucket(endpoint: str, name: str | None = None) -> str:
    """Create a bucket on the server and return its name.

    s3fs's ``mkdir`` sends a location constraint that moto refuses for us-east-1, so the bucket
    is made with a plain CreateBucket call.
    """
    import s3fs

    bucket = name or unique_bucket_name()
    fs = s3fs.S3FileSystem(**storage_options(endpoint))
    fs.call_s3("create_bucket", Bucket=bucket)
    return bucket
