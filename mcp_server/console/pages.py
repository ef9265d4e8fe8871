"""The pages of a decision: the login form, the OAuth consent form, a consent request, their outcomes."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from mcp_server.console.html import alert, bdi, document, hidden, scope_words
from schemas.items import SpaceCount


def login_page(token: str, next_url: str, error: str | None = None) -> str:
    return document(
        "Unlock to decide",
        "<p>Enter your vault passphrase to review what apps ask of your Context Vault.</p>"
        f'{alert(error)}<form method=post action="/login">{hidden({"token": token, "next": next_url})}'
        "<label for=passphrase>Passphrase</label>"
        "<input id=passphrase type=password name=passphrase autocomplete=current-password required autofocus> "
        "<button type=submit>Continue</button></form>"
        "<p class=hint>No passphrase at hand? Run <code>ctxvault ui</code> in a terminal for a one-time login link.</p>",
    )


def consent_page(
    base: str,
    token: str,
    pid: str,
    client_name: str,
    client_id: str,
    redirect_uri: str,
    offered: Sequence[str],
    asked: bool,
    spaces: Sequence[SpaceCount],
    error: str | None = None,
) -> str:
    """The OAuth decision. Scopes the client named start ticked; with none named, every requestable scope is shown unticked."""
    check = " checked" if asked else ""
    boxes = "".join(f'<label><input type=checkbox name=scope value="{escape(s)}"{check}> {scope_words(s)}</label>' for s in offered)
    intro = "asks to:" if asked else "named no scope. It gets <strong>nothing</strong> unless you tick what it may do:"
    space_boxes = "".join(
        f'<label><input type=checkbox name=space value="{escape(s.space)}"> {escape(s.space)} '
        f"<span class=hint>({s.memories} memories, {s.preferences} preferences, {s.documents} documents)</span></label>"
        for s in spaces
    )
    space_set = (
        f"<fieldset><legend>Only these spaces</legend><p class=hint>None ticked: every space the scopes allow.</p>{space_boxes}</fieldset>"
        if spaces
        else ""
    )
    return document(
        "Allow access?",
        f"<p><strong>{bdi(client_name)}</strong> (<code>{bdi(client_id)}</code>) {intro}</p>{alert(error)}"
        f'<form method=post action="{escape(base)}/oauth/{escape(pid)}">{hidden({"token": token})}'
        f"<fieldset><legend>What it may do</legend>{boxes}</fieldset>{space_set}"
        "<fieldset><legend>Limits</legend>"
        "<label for=sens>Most sensitive items it may reach</label><select id=sens name=sens>"
        "<option value=''>any (high included)</option><option value=medium>up to medium</option><option value=low>low only</option>"
        "</select>"
        "<label for=expires>Access ends</label><select id=expires name=expires>"
        "<option value=''>when you revoke it</option><option value=1h>in 1 hour</option>"
        "<option value=1d>in 1 day</option><option value=30d>in 30 days</option></select></fieldset>"
        f"<p class=hint>Afterwards your browser returns to <code>{bdi(redirect_uri)}</code>. "
        "You can revoke this at any time on the Apps page or with <code>ctxvault grants</code>; every access is logged.</p>"
        "<button type=submit name=decision value=approve>Allow what is ticked</button> "
        "<button type=submit name=decision value=deny>Deny</button></form>",
    )


def link_page(link_token: str) -> str:
    return document(
        "Log in with your link",
        "<p>This one-time link was made by <code>ctxvault ui</code>. It works once, for a few minutes.</p>"
        f'<form method=post action="/login/link">{hidden({"link": link_token})}<button type=submit>Log in</button></form>',
    )


def error_page(message: str) -> str:
    return document("Cannot continue", f"<p role=alert>{escape(message)}</p>")


def request_page(token: str, app_name: str, scopes: list[str], purpose: str, status: str) -> str:
    items = "".join(f"<li>{scope_words(s)}</li>" for s in scopes)
    head = f"<p><strong>{bdi(app_name)}</strong> asks to:</p><ul>{items}</ul><p>Purpose: {bdi(purpose)}</p>"
    if status != "pending":
        return document("Consent request", f"{head}<p>This request is already <strong>{escape(status)}</strong>.</p>")
    return document(
        "Allow access?",
        f"{head}<p>You can revoke this at any time on the Apps page or with <code>ctxvault grants</code>; every access is logged.</p>"
        f"<form method=post>{hidden({'token': token})}"
        "<button type=submit name=decision value=approve>Approve</button> "
        "<button type=submit name=decision value=deny>Deny</button></form>",
    )


def decided_page(approved: bool) -> str:
    what = "Approved: the app can use these scopes from its next call." if approved else "Denied: the app gets nothing new."
    return document("Done", f"<p>{escape(what)}</p>")


def logged_out_page() -> str:
    return document("Logged out", "<p>Your session on this browser has ended.</p>")
