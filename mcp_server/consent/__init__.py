"""The owner's minimal consent pages: log in with the passphrase, then approve or deny an app.

Plain HTML with every value escaped; no scripts. Forms carry a CSRF token that must match
the page's cookie (double submit), and the Host/Origin guard refuses cross-site posts.
"""

from __future__ import annotations

from html import escape

STYLE = "body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem}code{background:#eee;padding:0 .2rem}"


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)} · Context Vault</title>"
        f"<meta name=referrer content=no-referrer><style>{STYLE}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )


def _hidden(fields: dict[str, str]) -> str:
    return "".join(f'<input type=hidden name="{escape(k)}" value="{escape(v)}">' for k, v in fields.items())


def login_page(csrf: str, next_url: str, error: str | None = None) -> str:
    problem = f"<p role=alert><strong>{escape(error)}</strong></p>" if error else ""
    return _page(
        "Unlock to decide",
        f"<p>An app asks for access to your Context Vault. Enter your vault passphrase to review the request.</p>{problem}"
        f'<form method=post action="/consent/login">{_hidden({"csrf": csrf, "next": next_url})}'
        "<label>Passphrase <input type=password name=passphrase autocomplete=current-password required autofocus></label> "
        "<button type=submit>Continue</button></form>",
    )


def consent_page(csrf: str, client_name: str, client_id: str, scopes: list[str], fields: dict[str, str]) -> str:
    items = "".join(f"<li><code>{escape(s)}</code></li>" for s in scopes)
    return _page(
        "Allow access?",
        f"<p><strong>{escape(client_name)}</strong> (<code>{escape(client_id)}</code>) asks to:</p><ul>{items}</ul>"
        "<p>You can revoke this at any time with <code>ctxvault grants</code>; every access is logged.</p>"
        f'<form method=post action="/authorize">{_hidden({**fields, "csrf": csrf})}'
        "<button type=submit name=decision value=approve>Approve</button> "
        "<button type=submit name=decision value=deny>Deny</button></form>",
    )


def error_page(message: str) -> str:
    return _page("Cannot continue", f"<p role=alert>{escape(message)}</p>")


def request_page(csrf: str, app_name: str, scopes: list[str], purpose: str, status: str) -> str:
    items = "".join(f"<li><code>{escape(s)}</code></li>" for s in scopes)
    head = f"<p><strong>{escape(app_name)}</strong> asks to:</p><ul>{items}</ul><p>Purpose: {escape(purpose)}</p>"
    if status != "pending":
        return _page("Consent request", f"{head}<p>This request is already <strong>{escape(status)}</strong>.</p>")
    return _page(
        "Allow access?",
        f"{head}<p>You can revoke this at any time with <code>ctxvault grants</code>; every access is logged.</p>"
        f"<form method=post>{_hidden({'csrf': csrf})}"
        "<button type=submit name=decision value=approve>Approve</button> "
        "<button type=submit name=decision value=deny>Deny</button></form>",
    )


def decided_page(approved: bool) -> str:
    what = "Approved: the app can use these scopes from its next call." if approved else "Denied: the app gets nothing new."
    return _page("Done", f"<p>{escape(what)}</p>")
