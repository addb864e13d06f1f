"""Chunk granularity and multi-view fusion on SciFact, scored in memory (no Chroma, exact search).

    .venv/bin/python evals/granularity_scifact.py ../shared/benchmarks/scifact --cache /tmp/scifact-views \\
        --chunkings 256/32,128/32,64/0 [--recipes 'c256/32*2,bm25*1;...'] [--split test --recipes ONE]

Each chunking embeds the whole corpus once with the product's own Chunker and model (cached under
--cache as .npy; on 2 cores 256/32 takes ~10 min, 64/0 ~30 min). A recipe is a z-score fusion
(as `rag.retrieval.zscore_fusion`, top 300 papers per view) of weighted views:
  c<tokens>/<overlap>        dense, a paper's best chunk        bm25   the product's BM25Index
  mean-c<tokens>/<overlap>   dense, the mean of a paper's chunk vectors

Train claims (the 505 with evidence ids in `metadata`, used only as labels) saturate near 0.90
nDCG@10, so every recipe is also scored on a harder proxy: the same claims against a corpus where
each gold abstract lost the sentences SciFact marks as the claim's rationale. That imitates test's
NOT-ENOUGH-INFO claims (112 of 300), whose cited paper is on topic but does not state the claim.
Score a recipe on test once, after choosing it on train (`--split test`).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from tune_scifact import ndcg10, recall100, train_qrels  # noqa: E402

DEFAULT_RECIPES = ("c256/32*2,bm25*1;c128/32*1.5,bm25*1;c64/0*1.5,bm25*1;c256/32*1,c128/32*1,bm25*1;"
                   "c256/32*1,c64/0*1,bm25*1;c256/32*1,mean-c256/32*1,bm25*1")
# SciFact's corpus text is its sentence list joined by spaces; this splits it back well enough
# (3 of 365 masked abstracts have a rationale index past the split count).
SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")


def masked_corpus(directory: Path, docs: dict[str, dict]) -> dict[str, str]:
    """Gold abstracts of train claims with their rationale sentences removed."""
    test = {line.split("\t")[0] for line in (directory / "qrels" / "test.tsv").read_text().splitlines()[1:]}
    drop: dict[str, set[int]] = defaultdict(set)
    for line in (directory / "queries.jsonl").open():
        record = json.loads(line)
        if record["_id"] not in test:
            for doc_id, evidence in (record.get("metadata") or {}).items():
                for item in evidence:
                    drop[doc_id].update(item["sentences"])
    return {d: " ".join(s for i, s in enumerate(SENTENCE.split(docs[d]["text"])) if i not in idx)
            for d, idx in drop.items()}


class Views:
    def __init__(self, directory: Path, cache: Path, queries: dict[str, str], split: str):
        from rag.embedding import DocEncoder, load_tokenizer, resolve_model

        self.directory, self.cache, self.queries = directory, cache, queries
        self.docs = {d["_id"]: d for d in map(json.loads, (directory / "corpus.jsonl").open())}
        model = resolve_model("all-MiniLM-L6-v2")
        self.tokenizer, self.encoder = load_tokenizer(model), DocEncoder(model)
        cache.mkdir(parents=True, exist_ok=True)
        self.Q = self._cached(f"q-{split}", lambda: self._encode(list(queries.values())))
        self.masked = masked_corpus(directory, self.docs) if split == "train" else {}
        self._views: dict[tuple[str, bool], list[dict[str, float]]] = {}

    def _encode(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode(texts).astype("float32")

    def _cached(self, name: str, make) -> np.ndarray:
        path = self.cache / f"{name}.npy"
        if not path.exists():
            print(f"embedding {name}…", file=sys.stderr, flush=True)
            np.save(path, make())
        return np.load(path)

    def _chunks(self, spec: str, masked: bool) -> tuple[np.ndarray, np.ndarray]:
        from rag.chunking import Chunker
        from rag.sources import Paper

        tokens, overlap = map(int, spec.split("/"))
        chunker = Chunker(self.tokenizer, tokens, overlap)

        def chunk(ids) -> tuple[list[str], list[str]]:
            out = [(c.paper_id, c.text) for d in ids for c in chunker.chunks(
                Paper(d, self.docs[d].get("title", ""), self.masked.get(d, self.docs[d]["text"]) if masked
                      else self.docs[d]["text"], "scifact"))]
            return [p for p, _ in out], [t for _, t in out]

        def cached(name: str, ids) -> tuple[np.ndarray, np.ndarray]:
            # The ids are kept beside the vectors: a cache made by another chunker still lines up.
            ids_file = self.cache / f"{name}.ids.json"
            if not ids_file.exists():
                pids, texts = chunk(ids)
                np.save(self.cache / f"{name}.npy", self._encode(texts))
                ids_file.write_text(json.dumps([f"{p}:{i}" for i, p in enumerate(pids)]))
            pids = np.array([i.rsplit(":", 1)[0] for i in json.loads(ids_file.read_text())])
            return np.load(self.cache / f"{name}.npy"), pids

        name = f"c{tokens}o{overlap}"
        vectors, pids = cached(name, self.docs)
        if not masked:
            return vectors, pids
        mvectors, mpids = cached(f"{name}-masked", [d for d in self.docs if d in self.masked])
        keep = ~np.isin(pids, list(self.masked))
        return np.concatenate([vectors[keep], mvectors]), np.concatenate([pids[keep], mpids])

    def _best_per_paper(self, vectors: np.ndarray, pids: np.ndarray, n: int = 1500) -> list[dict[str, float]]:
        out = []
        for row in self.Q @ vectors.T:
            top = np.argpartition(-row, n)[:n]
            best: dict[str, float] = {}
            for j in top[np.argsort(-row[top])]:
                best.setdefault(pids[j], float(row[j]))
            out.append(best)
        return out

    def get(self, name: str, masked: bool) -> list[dict[str, float]]:
        key = (name, masked)
        if key not in self._views:
            if name == "bm25":
                from rag.store import BM25Index

                index = BM25Index(self.cache / f"bm25-{'masked' if masked else 'full'}")
                index.build([(d, doc.get("title", ""), self.masked.get(d, doc["text"]) if masked else doc["text"])
                             for d, doc in self.docs.items()])
                self._views[key] = [dict(index.search(q, 1000)) for q in self.queries.values()]
            elif name.startswith("mean-c"):
                vectors, pids = self._chunks(name[6:], masked)
                papers, inverse = np.unique(pids, return_inverse=True)
                means = np.zeros((len(papers), vectors.shape[1]), "float32")
                np.add.at(means, inverse, vectors)
                means /= np.linalg.norm(means, axis=1, keepdims=True)
                self._views[key] = self._best_per_paper(means, papers)
            else:
                self._views[key] = self._best_per_paper(*self._chunks(name[1:], masked))
        return self._views[key]


def ranking(views: list[tuple[dict[str, float], float]], depth: int = 300) -> list[str]:
    from rag.retrieval import zscore_fusion

    fused = zscore_fusion([(dict(sorted(s.items(), key=lambda kv: -kv[1])[:depth]), w) for s, w in views])
    return sorted(fused, key=lambda p: -fused[p])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--cache", type=Path, required=True, help="where embeddings are kept between runs")
    parser.add_argument("--split", default="train", choices=["train", "test"])
    parser.add_argument("--recipes", default=DEFAULT_RECIPES, help="';'-separated, each 'view*weight,view*weight'")
    args = parser.parse_args()

    from rag.evaluate import load_beir_queries

    queries, qrels = train_qrels(args.directory) if args.split == "train" else load_beir_queries(args.directory)
    views = Views(args.directory, args.cache, queries, args.split)
    corpora = (False, True) if args.split == "train" else (False,)
    print(f"{len(queries)} {args.split} claims; nDCG@10 R@100" + ("  (full | rationale-masked)" if
                                                                     args.split == "train" else ""))
    for recipe in args.recipes.split(";"):
        parts = [(v, float(w)) for v, w in (t.rsplit("*", 1) for t in recipe.split(","))]
        cells = []
        for masked in corpora:
            n = r = 0.0
            for i, qid in enumerate(queries):
                ranked = ranking([(views.get(v, masked)[i], w) for v, w in parts])
                n += ndcg10(ranked, set(qrels[qid]))
                r += recall100(ranked, set(qrels[qid]))
            cells.append(f"{n / len(queries):.4f} {r / len(queries):.4f}")
        print(f"{' | '.join(cells)}  {recipe}", flush=True)


if __name__ == "__main__":
    main()
