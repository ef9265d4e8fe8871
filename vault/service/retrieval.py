"""Index upkeep the owner starts: reindex and retrieval stats."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from schemas.retrieval import ReindexReport, RetrievalReport
from vault import vault_model
from vault.embed import load_embedder
from vault.principal import Principal
from vault.service.core import ServiceCore


class RetrievalPart(ServiceCore):
    """Index upkeep the owner starts: reindex and retrieval stats."""

    def reindex(self, principal: Principal, progress: Callable[[int, int], None] | None = None, model: str | None = None) -> ReindexReport:
        """Re-embed units lacking a vector of the vault's model and rebuild the sealed index (owner only).

        ``model``: switch the vault to that model first (recorded at once, vault/vault_model.py), then
        re-embed every unit with it. Resumable: a run stopped midway leaves the new model recorded, and the
        next `reindex` goes on; meanwhile searches rank by keywords (dense search refuses until it is done).

        Raises:
            ScopeDenied: not the owner. EmbedderUnavailable: the model cannot be loaded (nothing is switched).
        """
        self._policy.require_owner(principal, "reindex the vault")
        before = self.settings.model
        if model is not None and model != before:
            load_embedder(replace(self.settings, model=model))  # an unloadable model must switch nothing
            with self.store.transaction():
                vault_model.record(self.store, model)
                self._audit.record(principal, "write", detail={"action": "switch model", "from": before, "to": model})
            self.settings = replace(self.settings, model=model)
            self._retriever.use_model(self.settings)
        embedded = self._retriever.reindex(progress)
        st = self._retriever.stats()
        return ReindexReport(
            embedded=embedded, model=st.model, switched_from=before if st.model != before else None,
            index_kind=st.index_kind, index_size=st.index_size,
        )  # fmt: skip

    def retrieval_stats(self, principal: Principal) -> RetrievalReport:
        """Model, backend, vector counts and index state (owner only)."""
        self._policy.require_owner(principal, "read the retrieval state")
        st = self._retriever.stats()
        waiting_items, waiting_units = self._retriever.backlog()
        return RetrievalReport(
            model=st.model, backend=st.backend, units=st.units, vectors=st.vectors, stale_vectors=st.stale_vectors,
            missing_vectors=st.missing_vectors, index_kind=st.index_kind, index_size=st.index_size, generation=st.generation,
            waiting_items=waiting_items, waiting_units=waiting_units,
        )  # fmt: skip
