"""The owner's consent pages: log in, then approve (narrowed) or deny an app; a small home page.

Plain HTML with every value escaped; no script at all; the stylesheet is served by the
vault itself (``/consent/style.css``) so the CSP can forbid inline code. Form tokens are
server-side (vault/owner_sessions.py), never a cookie's value. ``SECURITY_HEADERS`` go on
every page: ``Referrer-Policy: same-origin`` lets Chromium send the vault's own Origin on
its form posts (``no-referrer`` made it send ``Origin: null``, which the guard refuses)
while no URL of ours reaches the client's redirect server.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from schemas.access import ConsentRequest
from schemas.items import SpaceCount
from vault.scopes import describe_scope, parse_scope

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#111;background:#fff}"
    "code{background:#eee;padding:0 .2rem}fieldset{margin:1rem 0;border:1px solid #888}legend{font-weight:600}"
    "label{display:block;margin:.3rem 0}button{margin:.5rem .5rem 0 0;padding:.4rem 1rem}"
    ".hint{color:#333;font-size:.9rem}[role=alert]{color:#8b0000}"
)
STYLE_PATH = "/consent/style.css"


def security_headers(form_targets: Sequence[str] = ()) -> dict[str, str]:
    """Headers for every page: no inline script or style, no framing, no caching, no referrer beyond our origin.

    ``form_targets``: origins a form's answer may redirect to (the OAuth client's redirect URI).
    """
    form_action = " ".join(["'self'", *form_targets])
    return {
        "Content-Security-Policy": (
            f"default-src 'none'; style-src 'self'; img-src 'self'; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
        ),
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
    }


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)} · Context Vault</title>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f'<link rel=stylesheet href="{STYLE_PATH}"></head><body><main><h1>{escape(title)}</h1>{body}</main></body></html>'
    )


def _hidden(fields: dict[str, str]) -> str:
    return "".join(f'<input type=hidden name="{escape(k)}" value="{escape(v)}">' for k, v in fields.items())


def _alert(error: str | None) -> str:
    return f"<p role=alert><strong>{escape(error)}</strong></p>" if error else ""


def _bdi(text: str) -> str:
    """App-provided text, escaped and isolated: whatever its direction, it cannot reorder the page around it."""
    return f"<bdi>{escape(text)}</bdi>"


def _scope_words(text: str) -> str:
    return f"{escape(describe_scope(parse_scope(text)))} <code>{escape(text)}</code>"


def login_page(token: str, next_url: str, error: str | None = None) -> str:
    return _page(
        "Unlock to decide",
        "<p>Enter your vault passphrase to review what apps ask of your Context Vault.</p>"
        f'{_alert(error)}<form method=post action="/consent/login">{_hidden({"token": token, "next": next_url})}'
        "<label for=passphrase>Passphrase</label>"
        "<input id=passphrase type=password name=passphrase autocomplete=current-password required autofocus> "
        "<button type=submit>Continue</button></form>"
        "<p class=hint>No passphrase at hand? Run <code>ctxvault ui</code> in a terminal for a one-time login link.</p>",
    )


def consent_page(
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
    boxes = "".join(f'<label><input type=checkbox name=scope value="{escape(s)}"{check}> {_scope_words(s)}</label>' for s in offered)
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
    return _page(
        "Allow access?",
        f"<p><strong>{_bdi(client_name)}</strong> (<code>{_bdi(client_id)}</code>) {intro}</p>{_alert(error)}"
        f'<form method=post action="/consent/oauth/{escape(pid)}">{_hidden({"token": token})}'
        f"<fieldset><legend>What it may do</legend>{boxes}</fieldset>{space_set}"
        "<fieldset><legend>Limits</legend>"
        "<label for=sens>Most sensitive items it may reach</label><select id=sens name=sens>"
        "<option value=''>any (high included)</option><option value=medium>up to medium</option><option value=low>low only</option>"
        "</select>"
        "<label for=expires>Access ends</label><select id=expires name=expires>"
        "<option value=''>when you revoke it</option><option value=1h>in 1 hour</option>"
        "<option value=1d>in 1 day</option><option value=30d>in 30 days</option></select></fieldset>"
        f"<p class=hint>Afterwards your browser returns to <code>{_bdi(redirect_uri)}</code>. "
        "You can revoke this at any time with <code>ctxvault grants</code>; every access is logged.</p>"
        "<button type=submit name=decision value=approve>Allow what is ticked</button> "
        "<button type=submit name=decision value=deny>Deny</button></form>",
    )


def home_page(logout_token: str, pending: Sequence[ConsentRequest]) -> str:
    rows = "".join(
        f'<li><a href="/consent/{escape(r.id)}">{_bdi(r.app_name or r.app_id)}</a>: '
        f"{', '.join(escape(describe_scope(parse_scope(s))) for s in r.scopes)}</li>"
        for r in pending
    )
    listing = f"<ul>{rows}</ul>" if rows else "<p>No app is waiting for your decision.</p>"
    return _page(
        "Signed in",
        f"<h2>Pending requests</h2>{listing}"
        f'<form method=post action="/consent/logout">{_hidden({"token": logout_token})}<button type=submit>Log out</button></form>',
    )


def link_page(link_token: str) -> str:
    return _page(
        "Log in with your link",
        "<p>This one-time link was made by <code>ctxvault ui</code>. It works once, for a few minutes.</p>"
        f'<form method=post action="/consent/link">{_hidden({"link": link_token})}<button type=submit>Log in</button></form>',
    )


def error_page(message: str) -> str:
    return _page("Cannot continue", f"<p role=alert>{escape(message)}</p>")


def request_page(token: str, app_name: str, scopes: list[str], purpose: str, status: str) -> str:
    items = "".join(f"<li>{_scope_words(s)}</li>" for s in scopes)
    head = f"<p><strong>{_bdi(app_name)}</strong> asks to:</p><ul>{items}</ul><p>Purpose: {_bdi(purpose)}</p>"
    if status != "pending":
        return _page("Consent request", f"{head}<p>This request is already <strong>{escape(status)}</strong>.</p>")
    return _page(
        "Allow access?",
        f"{head}<p>You can revoke this at any time with <code>ctxvault grants</code>; every access is logged.</p>"
        f"<form method=post>{_hidden({'token': token})}"
        "<button type=submit name=decision value=approve>Approve</button> "
        "<button type=submit name=decision value=deny>Deny</button></form>",
    )


def decided_page(approved: bool) -> str:
    what = "Approved: the app can use these scopes from its next call." if approved else "Denied: the app gets nothing new."
    return _page("Done", f"<p>{escape(what)}</p>")


def logged_out_page() -> str:
    return _page("Logged out", "<p>Your session on this browser has ended.</p>")
