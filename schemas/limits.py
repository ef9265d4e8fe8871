"""Size caps on what callers send: one definition, imported by every schema and adapter.

A cap turns an oversized argument into one short validation error before any work is
done (a `kind` list of 100,000 strings used to cost 7 s and a 20 MB error message).
"""

from __future__ import annotations

QUERY_CHARS = 2000  # a search query or a task description
PURPOSE_CHARS = 500  # why an app asks for access, shown to the owner
MEMORY_CHARS = 100_000  # one memory's text or preference value (schemas.items.MAX_TEXT_CHARS)
ID_CHARS = 64  # an item id
NAME_CHARS = 64  # a space, a tag or a preference key (their patterns allow no more)
FILTER_ITEMS = 50  # spaces, tags or preference keys named in one call
KINDS = 3  # memory, preference, document
SCOPES = 20  # scopes asked for in one request
SCOPE_CHARS = 256  # one scope string with its constraints
# One document file, added from disk or uploaded in the console (Settings.max_document_bytes defaults to it;
# an upload's body may carry MAX_FORM_BYTES of form fields beside it).
DOCUMENT_BYTES = 50 * 1024 * 1024

# One JSON-RPC message read from stdio, and how deeply its JSON may nest; every
# argument above fits in far less, and a deeper or longer line is refused unread.
MESSAGE_CHARS = 1_048_576
JSON_DEPTH = 64
# Error messages never echo a whole input: they stop here.
ERROR_CHARS = 300
# One file uploaded to the console for import (streamed to a private file, never held in memory):
# passphrase and recipient bundles alike (both stream: vault/portable/bundle.py).
IMPORT_UPLOAD_BYTES = 1 << 30
