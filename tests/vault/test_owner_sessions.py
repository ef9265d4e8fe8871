"""The owner's sessions, form tokens, pending authorizations and login back-off, on a fake clock (no sleeping)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from vault import OWNER, VaultService
from vault.errors import InvalidToken, LoginThrottled
from vault.items import utcnow
from vault.owner_sessions import (
    FREE_FAILURES,
    GLOBAL_FREE_FAILURES,
    LOGIN_LINK_TTL,
    MAX_BACKOFF,
    MAX_FORM_TOKENS,
    MAX_PENDING,
    SESSION_IDLE,
    SESSION_MAX,
    OwnerSessions,
    PendingAuthorization,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_wrong_passphrases_back_off_per_browser_and_a_login_resets_it() -> None:
    clock = Clock()
    sessions = OwnerSessions(clock)
    guesser, owner = OwnerSessions.device(None), OwnerSessions.device(None)
    for _ in range(FREE_FAILURES):
        assert sessions.retry_after(guesser) == 0
        sessions.failed(guesser)
    assert sessions.retry_after(guesser) == 2.0
    with pytest.raises(LoginThrottled) as refused:
        sessions.check_login(guesser)
    assert refused.value.retry_after == 2.0 and refused.value.exit_code == 31
    assert sessions.retry_after(owner) == 0  # another local process's guesses do not lock the owner out
    clock.now += 2.0
    sessions.failed(guesser)
    assert sessions.retry_after(guesser) == 4.0
    for _ in range(20):
        sessions.failed(guesser)
    assert sessions.retry_after(guesser) == MAX_BACKOFF
    sessions.start(guesser)
    assert sessions.retry_after(guesser) == 0


def test_an_attempt_is_counted_before_it_is_checked_and_a_login_clears_it() -> None:
    sessions = OwnerSessions(Clock())
    device = OwnerSessions.device(None)
    for _ in range(FREE_FAILURES):
        sessions.attempt(device)  # reserved up front: parallel attempts cannot all pass the check first
    with pytest.raises(LoginThrottled):
        sessions.attempt(device)
    sessions.start(device)
    sessions.attempt(device)


def test_a_login_form_token_is_used_once() -> None:
    sessions = OwnerSessions(Clock())
    device = OwnerSessions.device(None)
    token = sessions.login_token(device)
    assert not sessions.login_ok(OwnerSessions.device(None), token)  # another browser's post does not use it up
    assert sessions.login_ok(device, token) and not sessions.login_ok(device, token)


def test_guesses_spread_over_many_device_ids_still_back_off_except_for_browsers_that_logged_in() -> None:
    clock = Clock()
    sessions = OwnerSessions(clock)
    trusted = OwnerSessions.device(None)
    sessions.start(trusted)
    for _ in range(GLOBAL_FREE_FAILURES):
        sessions.failed(OwnerSessions.device(None))
    assert sessions.retry_after(OwnerSessions.device(None)) == 2.0
    assert sessions.retry_after(trusted) == 0


def test_a_device_cookie_that_is_not_ours_is_replaced() -> None:
    assert OwnerSessions.device("short") != "short"
    good = OwnerSessions.device(None)
    assert OwnerSessions.device(good) == good


def test_sessions_expire_when_idle_and_after_their_maximum_and_logout_ends_them() -> None:
    clock = Clock()
    sessions = OwnerSessions(clock)
    idle = sessions.start()
    clock.now += SESSION_IDLE
    assert not sessions.valid(idle)
    busy = sessions.start()
    while clock.now < 1000.0 + SESSION_IDLE + SESSION_MAX - 60:
        clock.now += SESSION_IDLE - 1
        assert sessions.valid(busy)
    clock.now += 120
    assert not sessions.valid(busy)
    gone = sessions.start()
    token = sessions.form_token(gone, "logout")
    sessions.end(gone)
    assert not sessions.valid(gone) and not sessions.form_ok(gone, "logout", token)


def test_form_tokens_are_bound_to_their_session_and_their_form() -> None:
    sessions = OwnerSessions(Clock())
    one, two = sessions.start(), sessions.start()
    token = sessions.form_token(one, "oauth:a")
    assert sessions.form_ok(one, "oauth:a", token)
    assert not sessions.form_ok(two, "oauth:a", token)
    assert not sessions.form_ok(one, "oauth:b", token)
    assert not sessions.form_ok(one, "oauth:a", one)  # the session id is no form token
    device = OwnerSessions.device(None)
    login = sessions.login_token(device)
    assert sessions.login_ok(device, login) and not sessions.login_ok(OwnerSessions.device(None), login)


def test_a_pending_authorization_is_decided_once_and_lapses() -> None:
    clock = Clock()
    sessions = OwnerSessions(clock)
    pending = PendingAuthorization("c", "C", "http://127.0.0.1:9/cb", "x" * 43, "http://v/mcp", None, ("search:memories",), True)
    pid = sessions.hold(pending)
    assert sessions.take(pid) == pending and sessions.take(pid) is None
    late = sessions.hold(pending)
    clock.now += 11 * 60
    assert sessions.pending(late) is None


def test_a_taken_authorization_can_be_restored_until_it_is_settled() -> None:
    sessions = OwnerSessions(Clock())
    pending = PendingAuthorization("c", "C", "http://127.0.0.1:9/cb", "x" * 43, "http://v/mcp", None, ("search:memories",), True)
    pid = sessions.hold(pending)
    assert sessions.take(pid) == pending and sessions.pending(pid) is None and sessions.take(pid) is None
    sessions.restore(pid)
    assert sessions.pending(pid) == pending and sessions.take(pid) == pending
    sessions.settle(pid)
    sessions.restore(pid)
    assert sessions.pending(pid) is None


def test_a_login_link_works_once_and_lapses(vault: VaultService) -> None:
    link = vault.owner_login_link(OWNER)
    vault.redeem_owner_login(link)
    with pytest.raises(InvalidToken):
        vault.redeem_owner_login(link)
    late = vault.owner_login_link(OWNER)
    with pytest.raises(InvalidToken):
        vault.redeem_owner_login(late, now=utcnow() + LOGIN_LINK_TTL + timedelta(seconds=1))
    with pytest.raises(InvalidToken):
        vault.redeem_owner_login("cvl_made-up")


def test_a_flood_of_authorize_requests_and_login_pages_stays_bounded_and_evicts_the_oldest() -> None:
    sessions = OwnerSessions(Clock())
    pending = PendingAuthorization("c", "C", "http://127.0.0.1:9/cb", "x" * 43, "http://v/mcp", None, ("search:memories",), True)
    first = sessions.hold(pending)
    for _ in range(MAX_PENDING):
        last = sessions.hold(pending)
    assert sessions.pending(first) is None and sessions.pending(last) == pending
    device = OwnerSessions.device(None)
    oldest = sessions.login_token(device)
    for _ in range(MAX_FORM_TOKENS):
        newest = sessions.login_token(device)
    assert not sessions.login_ok(device, oldest) and sessions.login_ok(device, newest)


def test_waiting_authorizations_are_listed_until_taken_or_lapsed_and_can_be_dropped_per_client() -> None:
    clock = Clock()
    sessions = OwnerSessions(clock)

    def held(client: str) -> str:
        return sessions.hold(PendingAuthorization(client, "C", "http://127.0.0.1:9/cb", "x" * 43, "http://v/mcp", None, ("read:*",), True))

    a, b, c = held("a"), held("b"), held("b")
    assert [pid for pid, _ in sessions.waiting()] == [a, b, c]
    sessions.take(a)
    assert [pid for pid, _ in sessions.waiting()] == [b, c]
    assert sessions.drop("b") == 2 and sessions.waiting() == [] and sessions.pending(b) is None
    late = held("z")
    clock.now += 11 * 60
    assert sessions.waiting() == [] and sessions.drop() == 0 and sessions.pending(late) is None
