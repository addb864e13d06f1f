"""Abstracts/s on a GPU: the naive `SentenceTransformer.encode` against rag's ingest encoder (TorchDocEncoder:
fp16, the tokenizer a group ahead, length-sorted batches), on the same texts, side by side in one run.

    .venv/bin/python evals/gpu_bench.py [--device cuda] [--n 20000] [--corpus ../shared/benchmarks/scifact/corpus.jsonl]

Without --corpus (a lent device machine has no ../shared), the seed abstracts are repeated to --n texts.
Runs unchanged on the CPU (--device cpu, fp32) as a smoke test; the README quotes no GPU figure until this has
run on one. Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _texts(corpus: Path | None, n: int) -> list[str]:
    if corpus is not None:
        rows = (json.loads(line) for line in corpus.open())
        texts = [f"{r.get('title', '')}\n{r['text']}".strip() for r in rows]
    else:
        from rag.sources import load

        texts = [f"{p.title}\n{p.abstract}".strip() for p in load([ROOT / "seeds"]).papers]
    return (texts * (n // len(texts) + 1))[:n]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--corpus", type=Path)
    args = parser.parse_args()

    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    from rag.embedding import TorchDocEncoder, resolve_model
    from rag.settings import DEFAULT_MODEL

    model = resolve_model(DEFAULT_MODEL)
    texts = _texts(args.corpus, args.n)
    naive = SentenceTransformer(str(model.path), device=args.device, local_files_only=True)
    naive.max_seq_length = model.max_tokens
    ours = TorchDocEncoder(model, args.device, args.batch_size)
    warm = texts[: args.batch_size]
    naive.encode(warm, batch_size=args.batch_size)
    ours.encode(warm)
    results = {"device": args.device, "texts": len(texts), "batch_size": args.batch_size,
               "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None}
    timings = {}
    for name, run in (("naive SentenceTransformer.encode (fp32)", lambda: naive.encode(
            texts, batch_size=args.batch_size, normalize_embeddings=True, convert_to_numpy=True)),
                      ("rag TorchDocEncoder", lambda: ours.encode(texts))):
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        began = time.perf_counter()
        vectors = run()
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - began
        timings[name] = vectors
        results[name] = {"seconds": round(seconds, 2), "docs_per_s": round(len(texts) / seconds, 1)}
    a, b = timings.values()
    cosines = (np.asarray(a) * np.asarray(b)).sum(axis=1)
    results["cosine_min"], results["cosine_mean"] = float(cosines.min()), float(cosines.mean())
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
