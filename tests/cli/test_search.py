from __future__ import annotations

import json

from tests.cli.conftest import Invoke


def test_search_ranks_by_meaning_and_filters_by_kind(ctxvault: Invoke, initialised: str) -> None:
    ctxvault("add", "I drive a blue Toyota Corolla", "--space", "personal")
    ctxvault("add", "The team offsite is in Lisbon in May", "--space", "work")
    hits = json.loads(ctxvault("search", "which car do I own", "--k", "1", "--json").stdout)["hits"]
    assert [h["text"] for h in hits] == ["I drive a blue Toyota Corolla"]
    assert json.loads(ctxvault("search", "Lisbon", "--kind", "preference", "--json").stdout)["hits"] == []


def test_stats_and_reindex_report_the_vector_state(ctxvault: Invoke, initialised: str) -> None:
    ctxvault("add", "I drive a blue Toyota Corolla")
    stats = json.loads(ctxvault("stats", "--json").stdout)
    assert stats["vectors"] == stats["units"] == 1 and stats["stale_vectors"] == 0
    report = json.loads(ctxvault("reindex", "--json").stdout)
    assert report["embedded"] == 0 and report["index_size"] == 1
    assert ctxvault("reindex").exit_code == 0
