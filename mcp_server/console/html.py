"""HTML building blocks for the console: the layout, escaping helpers, security headers.

App-provided text (names, purposes, memory text) is hostile: it only ever reaches a page
through ``escape`` (or ``bdi``, which also isolates its direction). No inline script or style:
the stylesheet and the one script are files of this package served from ``STATIC_PREFIX``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from importlib import resources

from vault.scopes import describe_scope, parse_scope

STATIC_PREFIX = "/static/"
STATIC_FILES = {"console.css": "text/css", "console.js": "text/javascript"}
# The console's sections, in the order of the navigation bar: (path under /o/<key>/, label).
SECTIONS: tuple[tuple[str, str], ...] = (
    ("", "Inbox"),
    ("apps", "Apps"),
    ("activity", "Activity"),
    ("vault", "Vault"),
    ("transfer", "Export / import"),
    ("status", "Status"),
)


def static_file(name: str) -> bytes:
    """A file of mcp_server/console/static (KeyError for any name not in ``STATIC_FILES``)."""
    if name not in STATIC_FILES:
        raise KeyError(name)
    return resources.files("mcp_server.console").joinpath("static", name).read_bytes()


def security_headers(form_targets: Sequence[str] = ()) -> dict[str, str]:
    """Headers for every page: no inline script or style, no framing, no caching, no referrer beyond our origin.

    ``form_targets``: origins a form's answer may redirect to (the OAuth client's redirect URI).
    ``Referrer-Policy: same-origin`` (not ``no-referrer``, which makes Chromium post ``Origin: null``)
    keeps our URLs, and so the session's path key, from reaching any other origin.
    """
    form_action = " ".join(["'self'", *form_targets])
    return {
        "Content-Security-Policy": (
            "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; connect-src 'self'; "
            f"form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
        ),
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
    }


def bdi(text: str) -> str:
    """App-provided text, escaped and isolated: whatever its direction, it cannot reorder the page around it."""
    return f"<bdi>{escape(text)}</bdi>"


def hidden(fields: Mapping[str, str]) -> str:
    return "".join(f'<input type=hidden name="{escape(k)}" value="{escape(v)}">' for k, v in fields.items())


def alert(error: str | None) -> str:
    return f"<p role=alert><strong>{escape(error)}</strong></p>" if error else ""


def notice(message: str | None) -> str:
    return f"<p role=status class=notice>{escape(message)}</p>" if message else ""


def scope_words(text: str) -> str:
    """A scope in plain words, then as written."""
    return f"{escape(describe_scope(parse_scope(text)))} <code>{escape(text)}</code>"


def document(title: str, body: str, nav: str = "") -> str:
    """A whole page: ``nav`` is the console's navigation bar (empty on the login and decision pages)."""
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)} · Context Vault</title>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f'<link rel=stylesheet href="{STATIC_PREFIX}console.css"><script src="{STATIC_PREFIX}console.js" defer></script></head>'
        f"<body>{nav}<main id=main><h1>{escape(title)}</h1>{body}</main></body></html>"
    )


def navigation(base: str, active: str, logout_token: str) -> str:
    """The bar on every console page: the sections (``active`` marked for assistive tech) and Log out."""
    links = "".join(
        f'<li><a href="{escape(base)}/{path}"{" aria-current=page" if path == active else ""}>{escape(label)}</a></li>'
        for path, label in SECTIONS
    )
    return (
        '<header><a class=skip href="#main">Skip to content</a><nav aria-label=Console><strong>Context Vault</strong>'
        f'<ul>{links}</ul><form method=post action="{escape(base)}/logout">{hidden({"token": logout_token})}'
        "<button type=submit>Log out</button></form></nav></header>"
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], caption: str = "") -> str:
    """A table; ``rows`` hold HTML already escaped by the caller (cells are markup, e.g. links or forms)."""
    head = "".join(f"<th scope=col>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def post_button(action: str, token: str, label: str, fields: Mapping[str, str] | None = None, danger: bool = False) -> str:
    """A one-button form (works without JavaScript); ``action`` is a path of ours."""
    cls = " class=danger" if danger else ""
    return (
        f'<form method=post action="{escape(action)}" class=inline>{hidden({"token": token, **(fields or {})})}'
        f"<button type=submit{cls}>{escape(label)}</button></form>"
    )
