"""An add while units wait for their embeddings: its latency, and when it and the backlog become searchable.

    python -m bench backlog --backlog 2000 --adds 5

One vault with ``--backlog`` memories committed without vectors (as an interrupted import
leaves them), the real model. Then ``--adds`` memories are remembered one by one, each
timed (the whole service call: dedup, insert, its own vector) and followed by a lexical
and a dense search for it (time to first searchable = add + that search). The baseline,
in the same run, is what an add used to wait for: embedding the whole backlog first,
measured by embedding it (``Retriever.embed_backlog``), after which a backlog memory is
found by meaning. Figures move with the machine's load; the counts do not.
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench.common import bench_vault, bulk_insert, emit, real_embedder
from schemas.items import MemoryIn, SearchQuery
from vault import OWNER

SUBJECTS = ["my brother", "the plumber", "our landlord", "my dentist", "a colleague", "the airline", "my doctor", "the bank"]
VERBS = ["called about", "sent", "asked for", "confirmed", "cancelled", "renewed", "mentioned", "printed"]
OBJECTS = ["the invoice", "the booking", "the contract", "the ticket", "the parcel", "the policy", "the lease"]


def backlog_texts(n: int) -> list[str]:
    return [f"On day {i} {SUBJECTS[i % 8]} {VERBS[(i // 8) % 8]} {OBJECTS[(i // 64) % 7]} (ref {i})" for i in range(n)]


def run(backlog: int, adds: int) -> dict[str, object]:
    with bench_vault(embedder=real_embedder()) as bv:
        svc, retriever = bv.service, bv.retriever
        bulk_insert(bv, backlog_texts(backlog))
        bv.retriever._store.execute("DELETE FROM temp.cv_pending")  # written by "another process": the backlog
        svc.remember(OWNER, MemoryIn(text="I keep my passport in the top drawer"))  # loads the model and the index
        add_s, lexical_s, dense_s, found = [], [], [], 0
        for n in range(adds):
            text = f"The spare key number {n} is under the blue flower pot by door {n}"
            t0 = time.perf_counter()
            svc.remember(OWNER, MemoryIn(text=text))
            t1 = time.perf_counter()
            lex = svc.search(OWNER, SearchQuery(text=f"spare key number {n} door {n}", mode="lexical", limit=1)).hits
            t2 = time.perf_counter()
            dense = svc.search(OWNER, SearchQuery(text=f"where is extra house key {n} hidden", mode="dense", limit=3)).hits
            t3 = time.perf_counter()
            found += int(bool(lex) and lex[0].text == text) + int(any(h.text == text for h in dense))
            add_s.append(t1 - t0)
            lexical_s.append(t2 - t0)
            dense_s.append(t1 - t0 + t3 - t2)
        waiting = retriever.backlog()[1]
        t0 = time.perf_counter()
        embedded = retriever.embed_backlog()
        embed_s = time.perf_counter() - t0
        probe = backlog_texts(backlog)[backlog // 2]
        semantic = any(h.text == probe for h in svc.search(OWNER, SearchQuery(text=probe.lower(), mode="dense", limit=5)).hits)
    return {
        "backlog": backlog,
        "adds": adds,
        "waiting_after_adds": waiting,
        "add_ms_median": round(statistics.median(add_s) * 1000, 1),
        "add_ms_max": round(max(add_s) * 1000, 1),
        "first_searchable_lexical_ms_median": round(statistics.median(lexical_s) * 1000, 1),
        "first_searchable_dense_ms_median": round(statistics.median(dense_s) * 1000, 1),
        "added_found": f"{found}/{2 * adds}",
        "baseline_embed_backlog_s": round(embed_s, 2),
        "baseline_units_per_s": round(embedded / embed_s, 1) if embed_s else None,
        "backlog_found_by_meaning_after": semantic,
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench backlog", description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=2000, help="memories committed without vectors")
    parser.add_argument("--adds", type=int, default=5, help="memories remembered meanwhile, each timed")
    args = parser.parse_args(argv)
    emit(run(args.backlog, args.adds))
