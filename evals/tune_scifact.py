"""Tune fusion and roll-up on SciFact's TRAIN claims (never the test split), offline.

    RAG_DATA_DIR=... .venv/bin/python evals/tune_scifact.py ../shared/benchmarks/scifact [--split train|test]

Needs the corpus already ingested (`rag eval --beir DIR` or `rag ingest DIR/corpus.jsonl
--collection beir-scifact`). Each query's dense chunk ranking and BM25 scores are fetched once,
then every variant is scored in memory. Train qrels come from the evidence ids in the train
claims' `metadata` (505 claims carry them); metadata is used only as labels, never as input.
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np


def train_qrels(directory: Path) -> tuple[dict[str, str], dict[str, set[str]]]:
    test_ids = {line.split("\t")[0] for line in (directory / "qrels" / "test.tsv").read_text().splitlines()[1:]}
    queries, qrels = {}, {}
    for line in (directory / "queries.jsonl").open():
        record = json.loads(line)
        if record["_id"] in test_ids or not record.get("metadata"):
            continue
        queries[record["_id"]] = record["text"]
        qrels[record["_id"]] = set(record["metadata"])
    return queries, qrels


def ndcg10(ranked: list[str], gold: set[str]) -> float:
    dcg = sum(1 / math.log2(i + 2) for i, d in enumerate(ranked[:10]) if d in gold)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(len(gold), 10)))
    return dcg / ideal


def recall100(ranked: list[str], gold: set[str]) -> float:
    return len(set(ranked[:100]) & gold) / len(gold)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("directory", type=Path)
    parser.add_argument("--split", default="train", choices=["train", "test"])
    parser.add_argument("--only", help="print just the variant with this exact name (use on test)")
    args = parser.parse_args()

    from rag.evaluate import load_beir_queries
    from rag.retrieval import Retriever
    from rag.settings import Settings
    from rag.store import BM25Index

    if args.split == "train":
        queries, qrels = train_qrels(args.directory)
    else:
        queries, qrels = load_beir_queries(args.directory)
    settings = Settings(collection="beir-scifact")
    retriever = Retriever(settings)
    index = retriever.index
    rows = list(index.catalog.all_papers())
    print(f"{len(queries)} {args.split} queries, {len(rows)} documents", file=sys.stderr)

    # Dense: every query's top 400 chunks, with their cosine similarity.
    dense: dict[str, list[tuple[str, float]]] = {}
    for qid, text in queries.items():
        vector = retriever.embed_query(text)
        dense[qid] = [(pid, sim) for _, pid, sim in index.vectors.search(vector, 900)]

    def dense_rank(qid: str, rollup: str) -> tuple[list[str], dict[str, float]]:
        per: dict[str, list[float]] = defaultdict(list)
        for pid, sim in dense[qid]:
            per[pid].append(sim)
        if rollup == "max":
            score = {p: s[0] for p, s in per.items()}
        else:  # max plus a little credit for further matching chunks
            w = float(rollup.split(":")[1])
            score = {p: s[0] + w * sum(s[1:]) for p, s in per.items()}
        order = sorted(score, key=lambda p: -score[p])
        return order, score

    bm25_cache: dict[tuple, dict[str, tuple[list[str], dict[str, float]]]] = {}

    def bm25_rank(k1: float, b: float) -> dict[str, tuple[list[str], dict[str, float]]]:
        key = (k1, b)
        if key not in bm25_cache:
            tmp = BM25Index(Path("/tmp/tune-bm25") / f"{k1}-{b}")
            BM25Index.K1, BM25Index.B = k1, b
            tmp.build(rows)
            out = {}
            for qid, text in queries.items():
                found = tmp.search(text, 1000)
                out[qid] = ([p for p, _ in found], dict(found))
            bm25_cache[key] = out
        return bm25_cache[key]

    def fuse(d_order, d_score, b_order, b_score, how: str, k: int, wd: float, wb: float,
             depth: int = 100) -> list[str]:
        fused: dict[str, float] = defaultdict(float)
        if how == "rrf":
            for r, p in enumerate(d_order[:depth], 1):
                fused[p] += wd / (k + r)
            for r, p in enumerate(b_order[:depth], 1):
                fused[p] += wb / (k + r)
            return sorted(fused, key=lambda p: -fused[p])
        for order, score, w in ((d_order[:depth], d_score, wd), (b_order[:depth], b_score, wb)):
            if not order:
                continue
            vals = np.array([score[p] for p in order])
            if how == "linear":  # min-max over the candidates
                lo, span = vals.min(), vals.max() - vals.min()
            elif how == "zscore":
                lo, span = vals.mean(), vals.std()
            else:  # "maxnorm": divide by the best score only
                lo, span = 0.0, vals.max()
            for p in order:
                fused[p] += w * ((score[p] - lo) / span if span > 0 else 1.0)
        floor = min(fused.values(), default=0.0)
        # A paper only one ranking found gets that ranking's share; it is not pushed below others.
        return sorted(fused, key=lambda p: -(fused[p] - floor))

    def evaluate(ranker) -> tuple[float, float]:
        n, r = [], []
        for qid in queries:
            ranked = ranker(qid)
            n.append(ndcg10(ranked, qrels[qid]))
            r.append(recall100(ranked, qrels[qid]))
        return float(np.mean(n)), float(np.mean(r))

    results = []
    for rollup in ("max", "sum:0.1", "sum:0.3"):
        d = {q: dense_rank(q, rollup) for q in queries}
        results.append((f"dense rollup={rollup}", *evaluate(lambda q, d=d: d[q][0])))
    for k1, b in ((1.5, 0.75), (1.2, 0.75), (0.9, 0.4), (1.2, 0.9)):
        bm = bm25_rank(k1, b)
        results.append((f"bm25 k1={k1} b={b}", *evaluate(lambda q, bm=bm: bm[q][0])))
    d = {q: dense_rank(q, "max") for q in queries}
    for (k1, b), how, k, wd, depth in itertools.product(
            ((1.5, 0.75), (1.2, 0.75), (0.9, 0.4)), ("rrf", "linear", "zscore", "maxnorm"), (20, 60),
            (0.8, 1.0, 1.25, 1.5, 2.0), (100, 300)):
        if how != "rrf" and k != 60:
            continue
        bm = bm25_rank(k1, b)
        name = f"{how} k={k} wd={wd} depth={depth} k1={k1} b={b}"

        def ranker(q, bm=bm, how=how, k=k, wd=wd, depth=depth):
            return fuse(*d[q], *bm[q], how, k, wd, 1.0, depth)

        results.append((name, *evaluate(ranker)))
    # BM25 field weighting: the title counted twice.
    BM25Index.K1, BM25Index.B = 1.2, 0.75
    titled = BM25Index(Path("/tmp/tune-bm25/title2"))
    titled.build([(pid, f"{title} {title}", abstract) for pid, title, abstract in rows])
    bt = {}
    for qid, text in queries.items():
        found = titled.search(text, 1000)
        bt[qid] = ([p for p, _ in found], dict(found))
    results.append(("bm25 title x2 k1=1.2 b=0.75", *evaluate(lambda q: bt[q][0])))
    for wd in (1.5, 2.0):
        def ranker2(q, wd=wd):
            return fuse(*d[q], *bt[q], "zscore", 60, wd, 1.0, 300)

        results.append((f"zscore-title2 wd={wd}", *evaluate(ranker2)))

    # A third ranking: BM25 over chunks (each passage carries its title), rolled up by max.
    got = index.vectors.collection(create=False).get(include=["documents"])
    BM25Index.K1, BM25Index.B = 1.2, 0.75
    chunk_bm25 = BM25Index(Path("/tmp/tune-bm25/chunks"))
    chunk_bm25.build([(cid, "", text) for cid, text in zip(got["ids"], got["documents"])])
    bc = {}
    for qid, text in queries.items():
        per: dict[str, float] = {}
        for cid, score in chunk_bm25.search(text, 1500):
            per.setdefault(cid.rsplit(":", 1)[0], score)
        bc[qid] = (list(per), per)
    results.append(("bm25 chunks max", *evaluate(lambda q: bc[q][0])))
    bm12 = bm25_rank(1.2, 0.75)
    for wd, wc in itertools.product((1.5, 2.0, 2.5), (0.5, 1.0)):
        def ranker3(q, wd=wd, wc=wc):
            fused: dict[str, float] = defaultdict(float)
            for (order, score), w in ((d[q], wd), (bm12[q], 1.0), (bc[q], wc)):
                order = order[:300]
                vals = np.array([score[p] for p in order])
                mean, std = vals.mean(), vals.std()
                for p in order:
                    fused[p] += w * (score[p] - mean) / std
            return sorted(fused, key=lambda p: -fused[p])

        results.append((f"zscore3 wd={wd} wc={wc}", *evaluate(ranker3)))

    # Pseudo-relevance feedback on the dense side (Rocchio): move the query toward the best chunks
    # of the top fused papers, search again, fuse again.
    collection = index.vectors.collection(create=False)
    bm = bm25_rank(1.2, 0.75)
    vectors = {qid: retriever.embed_query(text) for qid, text in queries.items()}
    first = {q: fuse(*d[q], *bm[q], "zscore", 60, 2.0, 1.0, 300) for q in queries}
    best_chunk: dict[str, dict[str, str]] = {}
    for qid in queries:
        per: dict[str, str] = {}
        for cid, pid, _ in index.vectors.search(vectors[qid], 900):
            per.setdefault(pid, cid)
        best_chunk[qid] = per
    for top, beta in itertools.product((3, 5), (0.3, 0.6, 1.0)):
        dprf = {}
        for qid in queries:
            ids = [best_chunk[qid][p] for p in first[qid][:top] if p in best_chunk[qid]]
            got = collection.get(ids=ids, include=["embeddings"])
            centroid = np.mean(np.array(got["embeddings"]), axis=0) if ids else 0
            v = vectors[qid] + beta * centroid
            v = v / np.linalg.norm(v)
            per: dict[str, float] = {}
            for _, pid, sim in index.vectors.search(v.astype("float32"), 900):
                per.setdefault(pid, sim)
            dprf[qid] = (list(per), per)
        results.append((f"dense-prf top={top} beta={beta}", *evaluate(lambda q, dp=dprf: dp[q][0])))
        for wd in (1.5, 2.0, 3.0):
            def ranker(q, dp=dprf, wd=wd):
                return fuse(*dp[q], *bm[q], "zscore", 60, wd, 1.0, 300)

            results.append((f"prf-zscore top={top} beta={beta} wd={wd} k1=1.2 b=0.75", *evaluate(ranker)))
    results.sort(key=lambda r: -r[1])
    if args.only:
        for name, n, r in results:
            if name == args.only:
                print(f"{n:.4f}  {r:.4f}  {name}")
        return
    best = {}
    for row in results:
        best.setdefault(row[0].split()[0], row)
    for name, n, r in results[:10] + list(best.values()):
        print(f"{n:.4f}  {r:.4f}  {name}")
    for name, n, r in results:
        if name.startswith(("dense", "bm25")):
            print(f"{n:.4f}  {r:.4f}  {name}")


if __name__ == "__main__":
    main()
