"""A client of ``callqa serve``, and a server started on loopback for a script's lifetime.

:class:`LocalServer` runs ``callqa serve`` as a user would (its own process, its own model loading),
waits for ``/v2/health/ready`` and stops it with SIGTERM, which lets the calls in flight finish. The
quickstart and bench/server_load.py use it; a service in Python can use :class:`ScoringClient` alone.
A 429 (server full) is retried after the ``Retry-After`` the server sent, so a client that sends more
calls at once than the server has workers still gets every call scored.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx

from callqa.data.scores import CallScore

#: Seconds a 429 is retried for before the call is given up as refused.
BUSY_PATIENCE = 600.0


class ServerError(RuntimeError):
    """The server refused a call or could not be started; the message is the server's own."""


def free_port() -> int:
    """A loopback port nothing listens on now (the server binds it a moment later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ScoringClient:
    """``POST /v1/calls:score`` and the health probe, with the API key when the server needs one."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        timeout: float = 600.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"X-API-Key": api_key} if api_key else {}
        self.http = httpx.Client(base_url=url, headers=headers, timeout=timeout, transport=transport)

    def ready(self) -> bool:
        try:
            return self.http.get("/v2/health/ready", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def score(self, audio: str | os.PathLike[str], metadata: Mapping[str, Any] | None = None) -> CallScore:
        """Score one recording; a 429 waits and tries again, any other refusal raises with the
        server's message."""
        path = Path(audio)
        data = {"metadata": json.dumps(dict(metadata))} if metadata else {}
        give_up = time.monotonic() + BUSY_PATIENCE
        while True:
            with path.open("rb") as fh:
                r = self.http.post("/v1/calls:score", files={"audio": (path.name, fh)}, data=data)
            if r.status_code != 429 or time.monotonic() > give_up:
                break
            time.sleep(float(r.headers.get("Retry-After", "1")))
        if r.status_code != 200:
            raise ServerError(f"{path}: {r.status_code} {_error(r)}")
        return CallScore.model_validate(r.json())

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ScoringClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _error(r: httpx.Response) -> str:
    try:
        return str(r.json().get("error", r.text))
    except ValueError:
        return r.text


class LocalServer:
    """``callqa serve ARGS`` on a free loopback port, ready on entry, stopped gracefully on exit."""

    def __init__(self, args: Sequence[str], ready_timeout: float = 180.0, log: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [str(Path(sys.executable).parent / "callqa"), "serve", *args, "--port", str(self.port)]
        self.ready_timeout, self.log = ready_timeout, log
        self.process: subprocess.Popen[bytes] | None = None
        self._sink: IO[bytes] | None = None

    def __enter__(self) -> LocalServer:
        self._sink = self.log.open("wb") if self.log else None
        out = self._sink or subprocess.DEVNULL
        self.process = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT)
        client = ScoringClient(self.url)
        try:
            deadline = time.monotonic() + self.ready_timeout
            while not client.ready():
                if self.process.poll() is not None:
                    code = self.process.returncode
                    raise ServerError(f"callqa serve stopped with code {code}{self._tail()}")
                if time.monotonic() > deadline:
                    self.stop()
                    raise ServerError(f"callqa serve was not ready in {self.ready_timeout:g} s{self._tail()}")
                time.sleep(0.2)
        finally:
            client.close()
        return self

    def _tail(self) -> str:
        if self.log is None or not self.log.is_file():
            return ""
        return ":\n" + self.log.read_text(encoding="utf-8", errors="replace")[-2000:]

    def rss_mb(self) -> float:
        """The server's resident memory now (Linux /proc)."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise ServerError(f"no VmRSS for process {self.process.pid}")

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM, then wait for the calls in flight to finish; killed if it outlasts ``timeout``."""
        try:
            if self.process is None:
                return None
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            return self.process.returncode
        finally:
            if self._sink is not None:
                self._sink.close()
                self._sink = None

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
