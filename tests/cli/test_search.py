from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import Invoke
from vault.search import INLINE_EMBED


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


def test_stats_status_and_doc_add_say_what_waits_for_embeddings(ctxvault: Invoke, initialised: str, tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("\n\n".join(f"Paragraph {n} of the long handbook about boilers and valves. " * 12 for n in range(300)))
    added = ctxvault("doc", "add", str(big), "--no-embed")
    stats = json.loads(ctxvault("stats", "--json").stdout)
    assert stats["waiting_items"] == 1 and stats["waiting_units"] == stats["units"] > INLINE_EMBED
    line = f"1 item waiting for embeddings ({stats['waiting_units']:,} chunks): run `ctxvault reindex`"
    assert line in added.stdout and line in ctxvault("stats").stdout and line in ctxvault("status").stdout
    assert json.loads(ctxvault("status", "--json").stdout)["waiting_units"] == stats["waiting_units"]
    assert json.loads(ctxvault("search", "boilers", "--mode", "lexical", "--json").stdout)["hits"]  # by keywords meanwhile
    ctxvault("doc", "remove", json.loads(ctxvault("doc", "list", "--json").stdout)["items"][0]["id"])
    assert json.loads(ctxvault("stats", "--json").stdout)["waiting_units"] == 0
    assert "waiting for embeddings" not in ctxvault("status").stdout


def test_without_a_session_doc_add_embeds_what_it_wrote_before_it_exits(ctxvault: Invoke, initialised: str, tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("\n\n".join(f"Paragraph {n} of the long handbook about boilers and valves. " * 12 for n in range(300)))
    added = ctxvault("doc", "add", str(big))
    assert added.exit_code == 0 and "waiting for embeddings" not in added.stdout
    stats = json.loads(ctxvault("stats", "--json").stdout)
    assert stats["units"] > INLINE_EMBED and stats["waiting_units"] == 0 and stats["vectors"] == stats["units"]
    hits = json.loads(ctxvault("search", "water heater maintenance", "--mode", "dense", "--json").stdout)["hits"]
    assert hits and "boilers" in hits[0]["text"]
