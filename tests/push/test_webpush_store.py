"""push.sqlite: a job's recipients are frozen at its start; only CLAIMED rows are in doubt; gone is gone."""

from __future__ import annotations

from pathlib import Path

import pytest

from statusd.channels.webpush_store import ACCEPTED, GONE, Subscription, Subscriptions

pytestmark = pytest.mark.unit


def sub(n: int, site: str = "main", kinds: str = "status", language: str = "fr") -> Subscription:
    return Subscription(f"https://push.example/{n}", "p" * 87, "a" * 22, site, kinds, language)


@pytest.fixture
def store(tmp_path: Path) -> Subscriptions:
    made = Subscriptions(tmp_path / "push.sqlite")
    made.subscribe_many([sub(1), sub(2), sub(3, kinds="all"), sub(4, language="en"), sub(1, site="annexe")],
                        "2026-12-02")
    return made


class TestJobs:
    """Recipients by site, language and kinds; progress survives a new connection (a restart)."""

    def test_recipients(self, store: Subscriptions) -> None:
        assert store.start_job("status", "main", "fr", status=True) == 3
        assert store.start_job("seats", "main", "fr", status=False) == 1
        store.subscribe(sub(9))
        assert store.start_job("status", "main", "fr", status=True) == 3, "frozen at the first start"

    def test_resume_after_a_crash(self, store: Subscriptions, tmp_path: Path) -> None:
        store.start_job("k", "main", "fr", status=True)
        first = store.claim("k", 2)
        store.record("k", [(first[0].id, ACCEPTED)])
        store.close()
        again = Subscriptions(tmp_path / "push.sqlite")
        assert again.in_doubt("k") == [first[1].endpoint]
        assert again.reopen("k") == 1
        left = again.claim("k", 10)
        assert [r.id for r in left] == [first[1].id, left[-1].id] and len(left) == 2
        assert again.progress("k").left == 2 and again.progress("k").accepted == 1

    def test_gone_removes_every_site_of_the_endpoint(self, store: Subscriptions) -> None:
        store.start_job("k", "main", "fr", status=True)
        one = next(r for r in store.claim("k", 10) if r.endpoint.endswith("/1"))
        store.record("k", [(one.id, GONE)])
        assert {s.endpoint for s in store.all()} == {f"https://push.example/{n}" for n in (2, 3, 4)}

    def test_stop_one_site(self, store: Subscriptions) -> None:
        assert store.unsubscribe("https://push.example/1", "annexe") == 1
        assert store.unsubscribe("https://push.example/1") == 1
        assert store.count() == 3

    def test_prune_forgets_old_finished_jobs(self, store: Subscriptions) -> None:
        store.start_job("k", "main", "fr", status=True)
        store.finish("k")
        assert store.prune(now=10**10) == 1
        assert not store.finished("k")
