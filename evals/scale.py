"""Index-side scale run: synthetic, deterministic chunks and vectors (no embedding), at growing sizes.

    .venv/bin/python evals/scale.py [--sizes 10000,100000,1000000] [--out evals/results/scale]

For each size, in a fresh process and data dir: Chroma upsert time, BM25 build time, size on
disk, resident memory, and warm hybrid query latency (Chroma top-300 chunks + BM25 top-100 +
RRF + catalog fetch and passages of the top 10; the query vector is given, so no encoder runs). Embedding cost
is linear in text and measured separately as docs/s (evals/bench.py, `rag eval --beir`).
Writes scale.json and scale.png (growth curves).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DIM = 384
WORDS_PER_CHUNK = 80


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def one_size(n: int, data_dir: Path) -> dict:
    import numpy as np

    from rag.chunking import Chunk
    from rag.retrieval import rrf
    from rag.settings import Settings
    from rag.sources import Paper
    from rag.store import Index, Manifest

    rng = np.random.default_rng(n)
    vocab = np.array([f"w{i}" for i in range(50_000)])
    zipf = 1 / np.arange(1, len(vocab) + 1)
    zipf /= zipf.sum()
    settings = Settings(data_dir=data_dir, collection="scale")
    index = Index(settings)
    index.catalog.set_manifest(Manifest("synthetic", "synthetic", DIM, 256, 32))
    upsert_s = 0.0
    batch = 5000
    for start in range(0, n, batch):
        ids = range(start, min(n, start + batch))
        words = rng.choice(vocab, size=(len(ids), WORDS_PER_CHUNK), p=zipf)
        texts = [" ".join(row) for row in words]
        vectors = rng.standard_normal((len(ids), DIM)).astype("float32")
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        papers = {f"p{i}": Paper(f"p{i}", f"title {i}", t, "synthetic") for i, t in zip(ids, texts)}
        # as rag chunks: title + "\n" + the passage, whose span of the abstract is what Chroma keeps
        chunks = [Chunk(f"p{i}:0", f"p{i}", 0, f"title {i}\n{t}", (0, len(t))) for i, t in zip(ids, texts)]
        began = time.perf_counter()
        index.vectors.upsert(chunks, vectors, papers)
        upsert_s += time.perf_counter() - began
        index.catalog.add(list(papers.values()), {pid: 1 for pid in papers})
        print(f"  {min(n, start + batch):>9,} / {n:,} upserted ({upsert_s:.0f} s)", file=sys.stderr, flush=True)
    began = time.perf_counter()
    index.bm25.build(index.catalog.all_papers())
    bm25_s = time.perf_counter() - began

    queries = [" ".join(rng.choice(vocab[:5000], size=4)) for _ in range(101)]
    qvecs = rng.standard_normal((101, DIM)).astype("float32")
    qvecs /= np.linalg.norm(qvecs, axis=1, keepdims=True)
    times = []
    for i, (q, v) in enumerate(zip(queries, qvecs)):
        began = time.perf_counter()
        dense = list(dict.fromkeys(pid for _, pid, _ in index.vectors.search(v, 300)))[:100]
        sparse = [pid for pid, _ in index.bm25.search(q, 100)]
        fused = rrf([(dense, 1.0), (sparse, 1.0)], 60)
        top = sorted(fused, key=lambda p: -fused[p])[:10]
        index.vectors.texts([f"{pid}:0" for pid in top], index.catalog.papers(top))
        if i:  # the first query loads BM25 and warms Chroma
            times.append((time.perf_counter() - began) * 1000)
    times.sort()
    return {"chunks": n, "upsert_s": round(upsert_s, 1), "upsert_per_s": round(n / upsert_s),
            "bm25_build_s": round(bm25_s, 1), "disk_mb": round(_du(data_dir) / 2**20, 1),
            "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "query_p50_ms": round(statistics.median(times), 2), "query_p95_ms": round(times[int(0.95 * len(times))], 2)}


def plot(rows: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r["chunks"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    axes[0].plot(sizes, [r["upsert_s"] for r in rows], "o-", label="Chroma upsert")
    axes[0].plot(sizes, [r["bm25_build_s"] for r in rows], "o-", label="BM25 build")
    axes[0].set(title="Index build time", ylabel="seconds")
    axes[1].plot(sizes, [r["disk_mb"] for r in rows], "o-", label="disk")
    axes[1].plot(sizes, [r["rss_mb"] for r in rows], "o-", label="peak RSS")
    axes[1].set(title="Size", ylabel="MB")
    axes[2].plot(sizes, [r["query_p50_ms"] for r in rows], "o-", label="p50")
    axes[2].plot(sizes, [r["query_p95_ms"] for r in rows], "o-", label="p95")
    axes[2].set(title="Warm hybrid query", ylabel="ms")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("chunks")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # the child process's job
    args = parser.parse_args()
    if args.one:
        with tempfile.TemporaryDirectory(prefix="rag-scale-") as tmp:
            print(json.dumps(one_size(args.one, Path(tmp))))
        return
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        print(f"{n:,} chunks", file=sys.stderr)
        done = subprocess.run([sys.executable, __file__, "--one", str(n)], capture_output=False,
                              stdout=subprocess.PIPE, text=True, check=True, env={**os.environ})
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scale.json").write_text(json.dumps(rows, indent=1))
    plot(rows, args.out / "scale.png")
    print("| chunks | upsert | upsert/s | BM25 build | disk | peak RSS | query p50 / p95 |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['chunks']:,} | {r['upsert_s']} s | {r['upsert_per_s']:,} | {r['bm25_build_s']} s | "
              f"{r['disk_mb']} MB | {r['rss_mb']} MB | {r['query_p50_ms']} / {r['query_p95_ms']} ms |")


if __name__ == "__main__":
    main()
