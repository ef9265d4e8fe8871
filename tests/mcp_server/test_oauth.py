"""The owner-login throttle of the consent page, on a fake clock (no sleeping)."""

from __future__ import annotations

from mcp_server.oauth import OwnerSessions


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_wrong_passphrases_back_off_after_five_and_a_login_resets_it() -> None:
    clock = Clock()
    sessions = OwnerSessions(clock)
    for _ in range(OwnerSessions.FREE_FAILURES):
        assert sessions.retry_after() == 0
        sessions.failed()
    assert sessions.retry_after() == 2.0
    clock.now += 2.0
    assert sessions.retry_after() == 0
    sessions.failed()
    assert sessions.retry_after() == 4.0
    for _ in range(20):
        sessions.failed()
    assert sessions.retry_after() == OwnerSessions.MAX_BACKOFF
    sid = sessions.start()
    assert sessions.valid(sid) and sessions.retry_after() == 0


def test_sessions_expire_and_expired_ones_are_pruned() -> None:
    clock = Clock()
    sessions = OwnerSessions(clock)
    old = sessions.start()
    clock.now += 16 * 60
    assert not sessions.valid(old)
    sessions.start()
    assert old not in sessions._expiry
