"""The embedding backlog: units written without a vector, embedded in the background while the session is unlocked.

A write commits its rows (and FTS) at once and embeds its own units only when they are
few (vault/search.py ``INLINE_EMBED``); everything else lacking a vector is the backlog:
a large `doc add` or import, an import that was interrupted, rows another process wrote.
Its only state is "units without a vector of the configured model", so there is no queue
to lose or to repair: a run killed at any point keeps every batch it committed, and the
next run (the unlock agent's worker, or `ctxvault reindex`) starts where it stopped.

The unlock agent (vault/session.py) runs ``embed`` in a forked child at a lower CPU
priority when a write leaves a backlog or `ctxvault unlock` finds one; it pauses between
batches while a command is being served.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from vault import vault_model
from vault.errors import EmbedderUnavailable
from vault.search import Retriever
from vault.unlock import open_store

if TYPE_CHECKING:
    from vault.crypto import DataKey
    from vault.settings import Settings


def waiting(settings: Settings, key: DataKey) -> tuple[int, int]:
    """Items and units lacking a vector of the configured model."""
    store = open_store(settings, key)
    try:
        return Retriever(store, vault_model.for_vault(settings, store), key).backlog()
    finally:
        store.close()


def embed(settings: Settings, key: DataKey, paused: Callable[[], bool] | None = None) -> int:
    """Embed the whole backlog in small batches, waiting while ``paused()``; the units embedded (0 if the model cannot load)."""
    store = open_store(settings, key)
    retriever = Retriever(store, vault_model.for_vault(settings, store), key)
    try:
        return retriever.embed_backlog(paused=paused)
    except EmbedderUnavailable:
        return 0  # the units stay in the backlog: `ctxvault reindex` says why
    finally:
        retriever.close()
        store.close()


__all__ = ["embed", "waiting"]
