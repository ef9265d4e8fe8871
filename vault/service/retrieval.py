"""Index upkeep the owner starts: reindex and retrieval stats."""

from __future__ import annotations

from collections.abc import Callable

from schemas.retrieval import ReindexReport, RetrievalReport
from vault.principal import Principal
from vault.service.core import ServiceCore


class RetrievalPart(ServiceCore):
    """Index upkeep the owner starts: reindex and retrieval stats."""

    def reindex(self, principal: Principal, progress: Callable[[int, int], None] | None = None) -> ReindexReport:
        """Re-embed units lacking a vector of the configured model and rebuild the sealed index (owner only).

        Raises:
            ScopeDenied: not the owner. EmbedderUnavailable: the model cannot be loaded.
        """
        self._policy.require_owner(principal, "reindex the vault")
        embedded = self._retriever.reindex(progress)
        st = self._retriever.stats()
        return ReindexReport(embedded=embedded, model=st.model, index_kind=st.index_kind, index_size=st.index_size)

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
