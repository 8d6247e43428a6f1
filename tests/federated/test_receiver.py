"""The ServerApp's report endpoint: only the run's token, only JSON objects of a known
kind, nothing oversized; everything refused is never handed to the driver."""

from __future__ import annotations

import socket

import httpx
import pytest

from tether.federated.receiver import MAX_REPORT_BYTES, ReportReceiver


@pytest.fixture
def receiver():  # type: ignore[no-untyped-def]
    with ReportReceiver() as running:
        yield running


def post(receiver: ReportReceiver, body: bytes, token: str | None,
         **headers: str) -> httpx.Response:
    sent = {"Content-Type": "application/json", **headers}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    return httpx.post(receiver.url, content=body, headers=sent, timeout=10)


def test_a_report_with_the_run_token_is_queued(receiver: ReportReceiver) -> None:
    answer = post(receiver, b'{"kind": "round", "round": 1}', receiver.token)
    assert answer.status_code == 202
    assert receiver.get(timeout=1) == {"kind": "round", "round": 1}


@pytest.mark.parametrize("token", [None, "wrong", "x" * 43])
def test_a_report_without_the_run_token_is_refused(receiver: ReportReceiver,
                                                   token: str | None) -> None:
    answer = post(receiver, b'{"kind": "final"}', token)
    assert answer.status_code == 401
    assert answer.json()["message"] == "missing or wrong run token"
    assert receiver.get(timeout=0.2) is None


@pytest.mark.parametrize(("body", "status"), [
    (b"not json", 400), (b"[1, 2]", 422), (b'{"kind": "rm -rf"}', 422),
    (b"[" * 100_000 + b"]" * 100_000, 400)])
def test_bad_bodies_are_4xx_and_never_queued(receiver: ReportReceiver, body: bytes,
                                             status: int) -> None:
    answer = post(receiver, body, receiver.token)
    assert answer.status_code == status
    assert "error" in answer.json()
    assert receiver.get(timeout=0.2) is None


def test_an_oversized_report_is_refused_before_it_is_read(receiver: ReportReceiver) -> None:
    # announced, not sent: the answer comes from the header alone
    host, port = receiver.url.removeprefix("http://").split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"POST /report HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                     f"{receiver.token}\r\nContent-Length: {MAX_REPORT_BYTES + 1}\r\n\r\n"
                     .encode())
        status_line = sock.makefile("rb").readline().decode()
    assert status_line.split()[1] == "413"
    assert receiver.get(timeout=0.2) is None
