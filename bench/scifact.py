"""SciFact (BEIR protocol): nDCG@10 and R@10 of dense-only, BM25-only and hybrid retrieval.

    python -m bench scifact --data ../shared/data/scifact

Each abstract is one unit (title + abstract, as BEIR feeds MiniLM); each claim
is a query; relevance is binary (``cited_doc_ids``). all-MiniLM-L6-v2's published
figure is 0.645 nDCG@10 on the BEIR *test* split; this data is the train split.
"""

from __future__ import annotations

import argparse
import csv
import math
import re
import sys
from pathlib import Path
from typing import Any

from bench.common import CachedEmbedder, bench_vault, bulk_insert, emit, real_embedder
from schemas.items import SearchQuery
from vault.filters import ItemFilter

_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"")


def load(data: Path) -> tuple[dict[str, str], list[tuple[str, set[str]]]]:
    csv.field_size_limit(sys.maxsize)
    docs: dict[str, str] = {}
    with (data / "corpus_train.csv").open() as f:
        for row in csv.DictReader(f):
            # The abstract is a printed numpy array of sentence strings.
            parts = [a or b for a, b in _QUOTED.findall(row["abstract"])]
            text = " ".join(parts) if parts else row["abstract"]
            docs[row["doc_id"]] = f"{row['title']} {text}"
    queries = []
    with (data / "claims_train.csv").open() as f:
        for row in csv.DictReader(f):
            cited = set(re.findall(r"\d+", row["cited_doc_ids"] or ""))
            if cited:
                queries.append((row["claim"], cited))
    # BEIR lists each claim once even when several evidence rows repeat it.
    merged: dict[str, set[str]] = {}
    for claim, cited in queries:
        merged.setdefault(claim, set()).update(cited)
    return docs, list(merged.items())


def ndcg10(ranked: list[str], relevant: set[str]) -> float:
    dcg = sum(1 / math.log2(i + 2) for i, d in enumerate(ranked[:10]) if d in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(10, len(relevant))))
    return dcg / ideal if ideal else 0.0


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="python -m bench scifact", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    docs, queries = load(args.data)
    embedder = CachedEmbedder(real_embedder())
    ids = list(docs)
    result: dict[str, Any] = {"benchmark": "scifact", "documents": len(docs), "queries": len(queries)}
    with bench_vault(embedder) as bv:
        uids = bulk_insert(bv, [docs[i] for i in ids])
        doc_of = dict(zip(uids, ids, strict=True))
        bv.retriever.sync()
        embedder.persist()
        for mode in ("dense", "lexical", "hybrid"):
            n = r = 0.0
            for claim, relevant in queries:
                ranked = [doc_of[u] for u, _ in bv.retriever.rank(SearchQuery(text=claim, limit=10, mode=mode), ItemFilter())]  # type: ignore[arg-type]
                n += ndcg10(ranked, relevant)
                r += len(set(ranked[:10]) & relevant) / len(relevant)
            result[mode] = {"nDCG@10": round(n / len(queries), 4), "R@10": round(r / len(queries), 4)}
    emit(result)


if __name__ == "__main__":
    main(sys.argv[1:])
