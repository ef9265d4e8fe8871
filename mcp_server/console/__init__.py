"""The owner's console: the vault's own web pages (Inbox, Apps, Activity, Vault, Transfer, Status).

Served by ``ctxvault serve`` beside /mcp. Every page is server-rendered HTML with every value
escaped; the core actions work without JavaScript; every asset ships in this package (no CDN).
The owner's session lives under ``/o/<key>/`` (vault/owner_sessions.py explains why a secret
path and not just a cookie): ``context.Console`` resolves it, ``html`` lays pages out, and one
module per page installs its routes (``routes.install``).
"""
