"""`evmeta lookup` gives up in time when the bibliographic service does not answer (issue 31).

Real local sockets on 127.0.0.1 only: a server that accepts and never answers, one that
answers the first requests and then goes silent, and a closed port. Each run ends well
within its deadline, says what happened, and exits 3 when no study could be checked.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import evmeta as em
from evmeta.cli import app
from evmeta.review import lookup as lookup_module
from evmeta.review.lookup import BREAKER_FAILURES, run_lookup

runner = CliRunner()
WORK = json.loads((Path(__file__).parent / "data" / "lookup" / "crossref_work.json").read_text())


class _Server:
    """Accepts connections on 127.0.0.1; answers the first ``answered`` requests, then is silent."""

    def __init__(self, answered: int = 0) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(32)
        self.answered = answered
        self.seen = 0
        self.stop = threading.Event()
        self.held: list[socket.socket] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self.stop.is_set():
            try:
                connection, _ = self.sock.accept()
            except OSError:
                continue
            with self.lock:
                if self.stop.is_set():
                    connection.close()
                    return
                self.seen += 1
                if self.seen <= self.answered:
                    self._answer(connection)
                else:
                    self.held.append(connection)  # accepted, never answered

    @staticmethod
    def _answer(connection: socket.socket) -> None:
        connection.settimeout(2)
        try:
            connection.recv(65536)
            body = json.dumps(WORK).encode()
            connection.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
        except OSError:
            pass
        finally:
            connection.close()

    def close(self) -> None:
        with self.lock:
            self.stop.set()
        self.thread.join(5)
        self.sock.close()
        for connection in self.held:
            connection.close()


def _book(folder: Path, n: int) -> Path:
    path = folder / "book.xlsx"
    studies = [
        {"study_id": f"S{i}", "first_author": "Zhang", "year": 2020, "doi": f"10.9999/evmeta.example.{i:03d}"}
        for i in range(n)
    ]
    em.write_template(path, data={"studies": studies})
    return path


def _closed_port() -> str:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now: connections are refused
    return f"http://127.0.0.1:{port}"


def _invoke(book: Path, tmp_path: Path, *extra: str):
    args = ["lookup", str(book), "--cache", str(tmp_path / "cache"), *extra]
    started = time.perf_counter()
    result = runner.invoke(app, args)
    return result, time.perf_counter() - started


def test_a_silent_server_trips_the_breaker_and_exits_3(tmp_path, monkeypatch):
    server = _Server(answered=0)
    monkeypatch.setenv("EVMETA_CROSSREF_URL", server.url)
    book = _book(tmp_path, 12)
    try:
        result, elapsed = _invoke(book, tmp_path, "--request-timeout", "0.5", "--deadline", "20")
    finally:
        server.close()
    # Three time-outs of 0.5 s, then nothing is asked: far below 12 x 0.5 s or the deadline.
    assert elapsed < 6, elapsed
    assert result.exit_code == 3, result.output
    assert f"did not answer {BREAKER_FAILURES} requests in a row" in result.output
    skipped = [f"S{i}" for i in range(BREAKER_FAILURES, 12)]
    assert (
        f"{len(skipped)} studies not checked (service not answering): {', '.join(skipped)}" in result.output
    )
    assert "no study could be checked" in result.output
    assert "0 of 12 studies found (0 checked)" in result.output


def test_a_server_that_stops_half_way(tmp_path, monkeypatch):
    server = _Server(answered=2)
    monkeypatch.setenv("EVMETA_CROSSREF_URL", server.url)
    book = _book(tmp_path, 8)
    url = server.url
    try:
        started = time.perf_counter()
        result, _ = run_lookup(book, cache=tmp_path / "cache", request_timeout=0.5, timeout=20)
        elapsed = time.perf_counter() - started
    finally:
        server.close()
    assert elapsed < 6, elapsed
    status = dict(zip(result.rows["study_id"], result.rows["status"], strict=True))
    assert [status[f"S{i}"] for i in range(8)] == ["checked"] * 2 + ["unreachable"] * 3 + ["skipped"] * 3
    assert result.n_checked == 2 and not result.unreachable
    assert result.skipped == ["S5", "S6", "S7"]
    assert result.down == {"Crossref": url}


def test_a_server_that_stops_half_way_cli_exit_0_with_the_list(tmp_path, monkeypatch):
    server = _Server(answered=1)
    monkeypatch.setenv("EVMETA_CROSSREF_URL", server.url)
    book = _book(tmp_path, 6)
    try:
        result, elapsed = _invoke(book, tmp_path, "--request-timeout", "0.5")
    finally:
        server.close()
    assert elapsed < 6, elapsed
    assert result.exit_code == 0, result.output  # one study was checked: a partial result
    assert "1 of 6 studies found (1 checked)" in result.output
    assert "2 studies not checked (service not answering): S4, S5" in result.output


def test_a_closed_port_is_a_connection_failure_not_a_result(tmp_path, monkeypatch):
    monkeypatch.setenv("EVMETA_CROSSREF_URL", _closed_port())
    book = _book(tmp_path, 10)
    result, elapsed = _invoke(book, tmp_path, "--request-timeout", "5")
    assert elapsed < 10, elapsed
    assert result.exit_code == 3, result.output
    assert "could not connect to the service (connection refused)" in result.output
    assert "7 studies not checked (service not answering)" in result.output
    assert "Traceback" not in result.output


def test_the_deadline_bounds_the_whole_run(tmp_path, monkeypatch):
    # Breaker never trips (every other answer succeeds would reset it); the deadline ends it.
    server = _Server(answered=0)
    monkeypatch.setenv("EVMETA_CROSSREF_URL", server.url)
    monkeypatch.setattr(lookup_module, "BREAKER_FAILURES", 100)
    book = _book(tmp_path, 10)
    try:
        result, elapsed = _invoke(book, tmp_path, "--request-timeout", "0.5", "--deadline", "1.2")
    finally:
        server.close()
    assert elapsed < 5, elapsed
    assert result.exit_code == 3, result.output
    assert "studies not checked (deadline of 1.2 s reached): " in result.output


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
def test_the_deadline_must_be_a_positive_number(tmp_path, value):
    result = runner.invoke(app, ["lookup", str(tmp_path / "x.xlsx"), "--deadline", value])
    assert result.exit_code == 2 and "--deadline" in result.output


def test_the_cli_defaults_are_the_documented_ones():
    import inspect

    from evmeta.cli.review import lookup

    defaults = inspect.signature(lookup).parameters
    assert defaults["deadline"].default == lookup_module.DEADLINE == 300.0
    assert defaults["request_timeout"].default == lookup_module.REQUEST_TIMEOUT == 30.0
    limits = (Path(__file__).parents[1] / "docs" / "limits.md").read_text()
    assert "300 s" in limits and "30 s" in limits and f"{BREAKER_FAILURES} " in limits
