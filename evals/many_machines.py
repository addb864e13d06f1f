"""Node B's first search against a Chroma server that node A filled, compared with re-ingesting
(issue 16). Never a timed unit test: run it by hand, on a quiet machine.

    .venv/bin/python evals/many_machines.py [--seeds ../shared/seeds] [--chunks 100000] [--json out.json]

Starts `chroma run` on a free port, then, each node a throwaway data dir and a fresh process:
  1. seeds, packaged MiniLM: A `rag ingest seeds/`; B (empty data dir) `rag search` (cold: it builds its
     catalog and BM25 from the server) and a second search (warm); B `rag ingest seeds/` into another
     collection, which is what B had to do before (embed everything again). B's top-10 must equal A's.
  2. N synthetic chunks with stored text (N/2 papers of two chunks, abstracts of ~1,300 characters, the
     chunk metadata rag writes) put straight on the server with random unit vectors, under the model-free
     fake embedder of the tests (a query embeds in microseconds, so the time is the cache's); B's first
     search (cold), then again after A adds 1% more papers (the incremental refresh), then after A
     removes 1% of them. Re-embedding N chunks is estimated from the MiniLM rate measured in step 1.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(path: Path) -> tuple[subprocess.Popen, str]:
    exe = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    port = _port()
    proc = subprocess.Popen([exe, "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={"ANONYMIZED_TELEMETRY": "False", "PATH": str(Path(sys.executable).parent)})
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("chroma run did not come up")


def rag(*args: str, env: dict) -> tuple[float, dict]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "rag.cli", *args, "--json"], env=env, capture_output=True,
                          text=True)
    if done.returncode:
        raise SystemExit(f"rag {' '.join(args)} failed: {done.stderr}")
    return time.perf_counter() - started, json.loads(done.stdout)


def seeds(url: str, seeds_dir: Path, tmp: Path) -> dict:
    base = {**os.environ, "RAG_CHROMA_URL": url}
    base.pop("RAG_EMBEDDER", None)
    a, b = ({**base, "RAG_DATA_DIR": str(tmp / n)} for n in ("seedA", "seedB"))
    ingest_s, report = rag("ingest", str(seeds_dir), env=a)
    query = "How can diffusion models be made faster at sampling?"
    _, top_a = rag("search", query, "-k", "10", env=a)
    cold_s, top_b = rag("search", query, "-k", "10", env=b)
    warm_s, _ = rag("search", query, "-k", "10", env=b)
    again_s, again = rag("ingest", str(seeds_dir), env={**b, "RAG_COLLECTION": "reingest"})
    same = [h["paper_id"] for h in top_a["hits"]] == [h["paper_id"] for h in top_b["hits"]]
    return {"papers": report["papers_total"], "chunks": report["chunks_total"], "a_ingest_s": round(ingest_s, 1),
            "b_first_search_s": round(cold_s, 2), "b_second_search_s": round(warm_s, 2),
            "b_reingest_s": round(again_s, 1), "b_reingest_chunks": again["chunks_embedded"],
            "same_top10": same, "minilm_chunks_per_s": round(again["chunks_embedded"] / again_s, 1)}


def _papers(n: int, start: int, rng: random.Random):
    from rag.sources import Paper

    words = ("model data learning network training graph attention loss sparse vision language robot policy "
             "reward kernel bound theorem protein molecule signal image speech token memory").split()
    for i in range(start, start + n):
        abstract = " ".join(rng.choice(words) for _ in range(190)) + f". Paper {i}."
        yield Paper(f"syn-{i}", f"Synthetic paper {i}", abstract, "synthetic.jsonl", 3, "2024-01-01",
                    {"authors": ["Ada Lovelace", "Alan Turing", "Grace Hopper"], "year": 2024, "doi": f"10.5555/{i}"})


def put(settings, papers, generation: int) -> None:
    """What `rag ingest` writes for these papers (two chunks each), with random vectors."""
    from conftest import HashEmbedder

    from rag.chunking import Chunk
    from rag.store import Manifest, VectorStore

    store, dim = VectorStore(settings), HashEmbedder().dim
    papers = list(papers)
    for start in range(0, len(papers), 500):
        part = papers[start:start + 500]
        chunks = [Chunk(f"{p.paper_id}:{n}", p.paper_id, n, p.title + "\n" + p.abstract[n * 650:(n + 1) * 650 + 100])
                  for p in part for n in range(2)]
        vectors = np.random.default_rng(start).standard_normal((len(chunks), dim)).astype("float32")
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        store.upsert(chunks, vectors, {p.paper_id: p for p in part}, generation)
    fake = HashEmbedder()
    store.mark(Manifest(fake.name, fake.fingerprint, dim, 256, 32), generation)
    store.close()


def synthetic(url: str, chunks: int, tmp: Path) -> dict:
    import conftest
    from conftest import HashEmbedder

    from rag.settings import Settings
    from rag.store import Manifest, VectorStore, next_generation

    env = {**os.environ, **conftest.FAKE_ENV, "RAG_CHROMA_URL": url, "RAG_DATA_DIR": str(tmp / "synB"),
           "RAG_COLLECTION": "synthetic"}
    settings = Settings(data_dir=tmp / "synA", chroma_url=url, collection="synthetic")
    rng = random.Random(16)
    n = chunks // 2
    started = time.perf_counter()
    # Stamped an hour back, as if A had loaded them earlier: a follower re-reads the last two minutes
    # of writes anyway (rag.cache.SKEW), and a load just finished would all fall inside them.
    put(settings, _papers(n, 0, rng), next_generation(0) - 3600 * 1_000_000)
    load_s = time.perf_counter() - started
    cold_s, first = rag("search", "protein memory kernel", "-k", "10", env=env)
    warm_s, _ = rag("search", "protein memory kernel", "-k", "10", env=env)
    put(settings, _papers(n // 100, n, rng), next_generation(0))
    more_s, after = rag("search", f"Paper {n + 5}", "-k", "10", "--mode", "bm25", env=env)
    store = VectorStore(settings)
    store.delete_papers([f"syn-{i}" for i in range(n // 100)])
    fake = HashEmbedder()
    store.mark(Manifest(fake.name, fake.fingerprint, fake.dim, 256, 32), next_generation(0))
    store.close()
    fewer_s, _ = rag("search", "protein memory kernel", "-k", "10", env=env)
    found_new = any(h["paper_id"] == f"syn-{n + 5}" for h in after["hits"])
    return {"chunks": chunks, "papers": n, "server_load_s": round(load_s, 1), "b_first_search_s": round(cold_s, 1),
            "b_second_search_s": round(warm_s, 2), "b_search_after_1pct_added_s": round(more_s, 2),
            "b_found_an_added_paper": found_new, "b_search_after_1pct_removed_s": round(fewer_s, 2),
            "hits": len(first["hits"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=Path, default=ROOT.parent / "shared/seeds")
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--no-seeds", action="store_true", help="only the synthetic part")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_server(Path(tmp) / "server")
        try:
            result = {"seeds": None if args.no_seeds else seeds(url, args.seeds, Path(tmp)),
                      "synthetic": synthetic(url, args.chunks, Path(tmp)), "cpus": os.cpu_count()}
        finally:
            proc.terminate()
            proc.wait(10)
    if result["seeds"]:
        rate = result["seeds"]["minilm_chunks_per_s"]
        result["synthetic"]["reembed_estimate_s"] = round(args.chunks / rate) if rate else None
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
