"""The batch emulator: bulk sampling, batching, retries, and honest counts."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from typing import ClassVar

import pytest

from emulator.batch_mode import EmulationOptions, run_batch
from emulator.sampler import RowSampler
from services.core.settings import Settings
from services.core.waiting import free_port
from services.source_db.database import make_engine
from tests.emulator.conftest import JsonEndpoint

pytestmark = pytest.mark.integration


class FakeProxy(JsonEndpoint):
    """A stand-in REST proxy whose failures the test scripts: 503s first, then offsets."""

    content_type = "application/vnd.kafka.v2+json"
    fail_first = 0
    record_error_every = 0
    calls: ClassVar[list[tuple[str, list[dict]]]] = []
    lock: ClassVar[threading.Lock] = threading.Lock()

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.lock:
            cls = type(self)
            cls.calls.append((self.path, body["records"]))
            failing = len(cls.calls) <= cls.fail_first
        if failing:
            self._reply(503, {"error_code": 50301, "message": "try later"})
            return
        offsets = []
        for i, _ in enumerate(body["records"]):
            if self.record_error_every and i % self.record_error_every == 0:
                offsets.append(
                    {"partition": None, "offset": None, "error_code": 50002, "error": "boom"}
                )
            else:
                offsets.append({"partition": 0, "offset": i, "error_code": None, "error": None})
        self._reply(200, {"offsets": offsets, "key_schema_id": None, "value_schema_id": None})


@pytest.fixture
def fake_proxy() -> Iterator[tuple[str, type[FakeProxy]]]:
    handler = type("Handler", (FakeProxy,), {"calls": [], "fail_first": 0, "record_error_every": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", handler
    server.shutdown()


def _settings(native_stack: Settings, url: str) -> Settings:
    return native_stack.model_copy(update={"rest_proxy_url": url})


def test_sampler_is_bulk_deterministic_and_samples_with_replacement(native_stack: Settings) -> None:
    engine = make_engine(native_stack.db)
    a = RowSampler(engine, seed=3).sample(3000)
    b = RowSampler(engine, seed=3).sample(3000)
    assert [e.ind for e in a] == [e.ind for e in b]
    assert len({e.ind for e in a}) < 3000  # 3000 draws from 2000 rows repeat some
    for e in a[:50]:
        assert e.pin["index"] == e.geo["ind"] == e.user["ind"] == e.ind
        assert isinstance(e.geo["timestamp"], str) and len(e.geo["timestamp"]) == 19
    engine.dispose()


def test_proxy_down_retries_then_reports_every_record_failed(native_stack: Settings) -> None:
    settings = _settings(native_stack, f"http://127.0.0.1:{free_port()}")
    opts = EmulationOptions(count=10, batch_size=5, direct=True, max_attempts=3, seed=1)
    summary = run_batch(settings, opts)
    assert summary.events == 10
    assert summary.acknowledged == 0
    assert summary.failed == summary.sent == 30
    assert summary.retries == 2 * summary.requests
    assert any("ConnectError" in reason for reason in summary.errors)


def test_transient_errors_are_retried_until_acknowledged(
    native_stack: Settings, fake_proxy
) -> None:
    url, handler = fake_proxy
    handler.fail_first = 2
    opts = EmulationOptions(count=20, batch_size=50, concurrency=1, direct=True, seed=2)
    summary = run_batch(_settings(native_stack, url), opts)
    assert summary.acknowledged == 60 and summary.failed == 0
    assert summary.retries == 2
    assert summary.acknowledged_by_topic == {t: 20 for t in native_stack.topics.values()}
    posted = [r["value"] for path, recs in handler.calls[2:] for r in recs]
    assert len(posted) == 60
    assert {p for p, _ in handler.calls} == {f"/topics/{t}" for t in native_stack.topics.values()}


def test_per_record_errors_count_as_failed_not_sent(native_stack: Settings, fake_proxy) -> None:
    url, handler = fake_proxy
    handler.record_error_every = 4
    opts = EmulationOptions(count=8, batch_size=8, concurrency=2, direct=True, seed=3)
    summary = run_batch(_settings(native_stack, url), opts)
    assert summary.sent == 24
    assert summary.failed == 6 and summary.acknowledged == 18
    assert summary.errors == {"50002: boom": 6}


def test_classic_mode_posts_one_record_per_request(native_stack: Settings, fake_proxy) -> None:
    url, handler = fake_proxy
    opts = EmulationOptions(count=2, classic=True, batch_size=1, direct=True, seed=4)
    summary = run_batch(_settings(native_stack, url), opts)
    assert summary.requests == 6 and summary.acknowledged == 6
    assert all(len(recs) == 1 for _, recs in handler.calls)
    assert [p.rsplit(".", 1)[1] for p, _ in handler.calls] == ["pin", "geo", "user"] * 2


def test_duration_bounds_an_unlimited_run(native_stack: Settings, fake_proxy) -> None:
    url, _ = fake_proxy
    opts = EmulationOptions(count=None, duration=1.0, rate=50, direct=True, seed=5)
    summary = run_batch(_settings(native_stack, url), opts)
    # An unlimited run ended by itself. Pacing lets event k go no earlier than k / rate
    # seconds in, so the deadline admits at most rate x duration + 1 events, however fast
    # or slow the machine is (how close a run comes to that is for `make bench`).
    assert 1 <= summary.events <= 50 * 1.0 + 1
    assert summary.acknowledged == summary.sent == 3 * summary.events
