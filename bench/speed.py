"""Search speed and ingest throughput at N items, with plain SQLite as a baseline in the same run.

    python -m bench search --n 10000 100000 --queries 300

Texts are real sentences (LoCoMo turns, MSC personas, SciFact abstract sentences,
then pairs of persona sentences to reach N). Latencies are per query, one thread
for encoding and faiss (as the vault runs them). Ingest goes through the vault's
bulk path, an import: with encoding excluded, the records carry their vectors (as a
bundle does) and the time covers rows, FTS, vectors and the sealed index; with
encoding included, ``--ingest`` fresh texts are split into paired rounds: in each, the
raw encoder and a vault import (which embeds) take disjoint texts of the same kind.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import sqlite3
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import CachedEmbedder, bench_vault, emit, percentiles, real_embedder
from bench.locomo import memory_text, turns
from schemas.items import SearchQuery
from vault import OWNER
from vault.filters import ItemFilter
from vault.items import new_ids, normalize
from vault.portable.records import ImportBatch, ItemRecord, VectorSet
from vault.search import fuse

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def corpus(data: Path, n: int) -> tuple[list[str], list[str]]:
    """N realistic memory texts and the LoCoMo questions to ask."""
    locomo = json.loads((data / "locomo" / "locomo_dev.json").read_text())
    texts = [memory_text(d, s, t) for conv in locomo for _, d, s, t in turns(conv)]
    questions = [qa["question"] for conv in locomo for qa in conv["qa"]]
    raw = json.loads((data / "distractors" / "msc_personas_all.json").read_text())
    personas = list(
        dict.fromkeys(s.strip() for split in raw.values() for dl in split for side in ("Speaker 1", "Speaker 2") for s in dl.get(side, []))
    )
    texts += personas
    csv.field_size_limit(sys.maxsize)
    with (data / "scifact" / "corpus_train.csv").open() as f:
        for row in csv.DictReader(f):
            for sent in re.findall(r"'([^']{40,400})'", row["abstract"]):
                texts.append(sent)
    rng = random.Random(13)
    while len(texts) < n:
        texts.append(f"{rng.choice(personas)} {rng.choice(personas)}")
    # Distinct after normalisation: the vault merges texts with the same content hash.
    unique = {normalize(t): t for t in reversed(texts)}
    while len(unique) < n:
        t = f"{rng.choice(personas)} {rng.choice(personas)} {rng.choice(personas)}"
        unique.setdefault(normalize(t), t)
    return list(reversed(unique.values()))[:n], questions


def import_batch(texts: list[str], vecs: np.ndarray | None = None, embedder: CachedEmbedder | None = None) -> ImportBatch:
    """Memories as an importer hands them to the vault, with their vectors when given."""
    stamp = datetime(2024, 1, 1, tzinfo=UTC)
    ids = new_ids(len(texts))
    records = tuple(
        ItemRecord(id=i, kind="memory", text=t, space="personal", created_at=stamp, updated_at=stamp, source="bench")
        for i, t in zip(ids, texts, strict=True)
    )
    vectors = None
    if vecs is not None and embedder is not None:
        vectors = VectorSet(embedder.model_id, embedder.dim, [(i, 0) for i in ids], np.ascontiguousarray(vecs, dtype=np.float32))
    return ImportBatch(format="bundle", source="bench", records=records, vectors=vectors)


def plain_sqlite(texts: list[str], vecs: np.ndarray, queries: list[str], match: Any, runs_wanted: int = 3) -> dict[str, Any]:
    """The same units, FTS and vector blobs in unencrypted stdlib SQLite, WAL, batched as the vault batches them.

    The baseline holds less than the vault (no items table, audit or index), so the
    ratio bounds what encryption and the vault's bookkeeping cost together.
    """
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        runs = []
        for run in range(runs_wanted):
            conn = sqlite3.connect(Path(tmp) / f"plain{run}.db", isolation_level=None)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.executescript(
                """CREATE TABLE units (uid INTEGER PRIMARY KEY, text TEXT NOT NULL);
                CREATE VIRTUAL TABLE units_fts USING fts5 (text, content='units', content_rowid='uid', tokenize='porter unicode61 remove_diacritics 2');
                CREATE TRIGGER units_ai AFTER INSERT ON units BEGIN INSERT INTO units_fts (rowid, text) VALUES (new.uid, new.text); END;
                CREATE TABLE vectors (uid INTEGER PRIMARY KEY, model TEXT, dim INTEGER, vec BLOB);"""
            )
            t0 = time.perf_counter()
            conn.execute("BEGIN")
            for start in range(0, len(texts), 10_000):  # the vault's batching: one statement per 10k units
                part = json.dumps([[start + i + 1, t] for i, t in enumerate(texts[start : start + 10_000])])
                conn.execute("INSERT INTO units (uid, text) SELECT value ->> 0, value ->> 1 FROM json_each(?)", (part,))
            conn.executemany("INSERT INTO vectors VALUES (?, 'm', ?, ?)", [(i + 1, vecs.shape[1], v.tobytes()) for i, v in enumerate(vecs)])
            conn.execute("COMMIT")
            runs.append(time.perf_counter() - t0)
            if run < runs_wanted - 1:
                conn.close()
        ingest = len(texts) / statistics.median(runs)
        lat = []
        for q in queries:
            m = match(q)
            if m is None:
                continue
            t0 = time.perf_counter()
            conn.execute("SELECT rowid, bm25(units_fts) AS r FROM units_fts WHERE units_fts MATCH ? ORDER BY r LIMIT 100", (m,)).fetchall()
            lat.append(time.perf_counter() - t0)
        conn.close()
    return {"ingest_items_per_s": round(ingest), "fts": percentiles(lat)}


def measure(n: int, args: argparse.Namespace, embedder: CachedEmbedder) -> dict[str, Any]:
    from vault.search import fts_query

    texts, questions = corpus(args.data, n)
    rng = random.Random(7)
    queries = rng.sample(questions, min(args.queries, len(questions)))
    t0 = time.perf_counter()
    vecs = embedder.encode(texts)
    embedder.persist()
    prep = time.perf_counter() - t0
    out: dict[str, Any] = {"n": n, "vectors_prepared_s": round(prep, 1)}
    # The machine's speed drifts between runs: time the import in fresh vaults and report the median.
    runs = []
    for _ in range(args.ingest_runs - 1):
        with bench_vault(embedder) as spare:
            batch = import_batch(texts, vecs, embedder)
            t0 = time.perf_counter()
            spare.service.import_items(OWNER, batch)
            runs.append(time.perf_counter() - t0)
    with bench_vault(embedder) as bv:
        # Encoding excluded: the vault's own bulk path, an import whose records carry their
        # vectors (as a bundle does): rows, FTS, vectors, index built and sealed.
        batch = import_batch(texts, vecs, embedder)
        t0 = time.perf_counter()
        summary = bv.service.import_items(OWNER, batch)
        runs.append(time.perf_counter() - t0)
        t_ingest = statistics.median(runs)
        assert summary.new == n and summary.vectors_reused == n, (summary.new, summary.vectors_reused)
        r = bv.retriever
        index = r._ensure_index()
        out["index_kind"] = index.kind
        out["index_lists"] = index.lists
        out["ingest_encoding_excluded_items_per_s"] = round(n / t_ingest)
        out["ingest_encoding_excluded_s"] = round(t_ingest, 2)
        out["ingest_encoding_excluded_runs_s"] = [round(t, 2) for t in runs]
        scope = ItemFilter()
        parts: dict[str, list[float]] = {k: [] for k in ("encode", "vector", "fts", "fusion", "fetch", "end_to_end")}
        for q in queries:  # warm-up: first-touch of pages and caches
            r.search(SearchQuery(text=q, limit=10), scope)
            break
        for q in queries:
            t0 = time.perf_counter()
            hits = r.search(SearchQuery(text=q, limit=10), scope)
            parts["end_to_end"].append(time.perf_counter() - t0)
            assert hits
            t0 = time.perf_counter()
            qv = r.embedder().encode_query(q)
            t1 = time.perf_counter()
            allowed = r._allowed(scope, index)
            ds, di = index.search(qv, 100, None if allowed.covers else allowed.ids)
            t2 = time.perf_counter()
            lex, rare = r.lexical.rank_with_rare(q, scope, 100)
            t3 = time.perf_counter()
            dense = list(zip(di.tolist(), ds.tolist(), strict=True))
            ranked = fuse(r.fusion, qv, index, dense, lex, rare, r.surroundings(r.fusion, q, scope, dense, lex))[:10]  # window included
            t4 = time.perf_counter()
            r._store.query(
                "SELECT u.uid, u.text, i.* FROM units u JOIN items i ON i.id = u.item_id WHERE u.uid IN (SELECT value FROM json_each(?))",
                [json.dumps([u for u, _ in ranked])],
            )
            t5 = time.perf_counter()
            for k, v in zip(("encode", "vector", "fts", "fusion", "fetch"), (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
                parts[k].append(v)
        out["latency"] = {k: percentiles(v) for k, v in parts.items()}
        # Recall@10 of the index against exact search over the same real vectors.
        qs = np.stack([r.embedder().encode_query(q) for q in queries[:100]])
        exact = np.argsort(-(qs @ vecs.T), axis=1)[:, :10]
        position = {item_id: n for n, item_id in enumerate(r.id for r in batch.records)}
        uid_of = np.zeros(n, dtype=np.int64)  # text position → unit id
        for uid, item_id in r._store.query("SELECT uid, item_id FROM units"):
            uid_of[position[item_id]] = uid
        got = [set(index.search(qv, 10)[1].tolist()) for qv in qs]
        out["index_recall_at_10"] = round(
            float(np.mean([len(g & set(uid_of[e].tolist())) / 10 for g, e in zip(got, exact, strict=True)])), 4
        )
    base = plain_sqlite(texts, vecs, queries, fts_query, args.ingest_runs)
    out["plain_sqlite"] = base
    out["fts_p50_ratio_vs_plain"] = round(out["latency"]["fts"]["p50_ms"] / max(base["fts"]["p50_ms"], 1e-6), 2)
    return out


def ingest(args: argparse.Namespace, embedder: CachedEmbedder) -> dict[str, Any]:
    """Encoding included vs the raw encoder, in paired rounds on disjoint fresh texts.

    One measurement of each side takes seconds, and the machine's speed drifts over
    seconds: each round times the raw encoder and a vault import back to back (the order
    alternating), and the ratio reported is the median of the rounds' ratios. The encoder
    is warmed first, so neither side pays for creating its session.
    """
    texts, _ = corpus(args.data, 200_000)
    rng = random.Random(99)
    rounds = max(1, args.ingest_rounds)
    size = max(1, args.ingest // (2 * rounds))
    fresh = [f"{t} ({rng.randrange(10**9)})" for t in rng.sample(texts, 2 * rounds * size + 16)]  # never cached
    inner = embedder.inner
    inner.encode(fresh[-16:])  # warm-up: the bulk session, the tokenizer's first batch
    raw_rates: list[float] = []
    vault_rates: list[float] = []
    for n in range(rounds):
        raw_texts, vault_texts = fresh[2 * n * size : (2 * n + 1) * size], fresh[(2 * n + 1) * size : (2 * n + 2) * size]
        for side in ("raw", "vault") if n % 2 == 0 else ("vault", "raw"):
            if side == "raw":
                t0 = time.perf_counter()
                inner.encode(raw_texts)
                raw_rates.append(size / (time.perf_counter() - t0))
            else:
                with bench_vault(inner) as bv:
                    t0 = time.perf_counter()
                    summary = bv.service.import_items(OWNER, import_batch(vault_texts))
                    vault_rates.append(size / (time.perf_counter() - t0))
                    assert summary.new == size and summary.vectors_reused == 0, (summary.new, summary.vectors_reused)
    ratios = [v / r for v, r in zip(vault_rates, raw_rates, strict=True)]
    return {
        "items_per_round": size,
        "rounds": rounds,
        "raw_encoder_items_per_s": round(statistics.median(raw_rates), 1),
        "ingest_encoding_included_items_per_s": round(statistics.median(vault_rates), 1),
        "ratio": round(statistics.median(ratios), 3),
        "round_ratios": [round(r, 3) for r in ratios],
        "backend": inner.backend,
    }


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="python -m bench search", description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--n", type=int, nargs="+", default=[10_000, 100_000])
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--ingest", type=int, default=5000, help="fresh texts for the encoding-included ingest rounds (half each side)")
    p.add_argument(
        "--ingest-rounds", type=int, default=5, help="paired rounds of raw encoder and vault import (the median ratio is reported)"
    )
    p.add_argument("--ingest-runs", type=int, default=3, help="encoding-excluded imports per size (the median is reported)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    embedder = CachedEmbedder(real_embedder())
    result: dict[str, Any] = {"benchmark": "search", "backend": embedder.backend, "sizes": [measure(n, args, embedder) for n in args.n]}
    result["ingest_with_encoding"] = ingest(args, embedder)
    emit(result)


if __name__ == "__main__":
    main(sys.argv[1:])
