"""Waiting: the value that ended the wait, tolerated errors, and a timeout that names its cause."""

from __future__ import annotations

import socket

import pytest

from services.core.waiting import WaitTimeout, free_port, poll

pytestmark = pytest.mark.unit


def test_poll_returns_the_first_truthy_answer() -> None:
    answers = iter([None, 0, [], "ready"])
    assert poll(lambda: next(answers), "an answer", timeout=5, every=0) == "ready"


def test_tolerated_errors_mean_not_yet_and_others_propagate() -> None:
    calls = iter([ConnectionError("starting"), "up"])

    def check() -> str:
        answer = next(calls)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert poll(check, "a service", timeout=5, every=0, tolerate=(ConnectionError,)) == "up"
    with pytest.raises(KeyError):
        poll(lambda: {}["missing"], "a key", timeout=5, every=0, tolerate=(ConnectionError,))


def test_a_timeout_names_what_was_waited_for() -> None:
    with pytest.raises(WaitTimeout, match="timed out after 0s waiting for the moon"):
        poll(lambda: False, "the moon", timeout=0.2, every=0.05)


def test_a_free_port_can_be_bound() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", free_port()))
