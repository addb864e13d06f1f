"""Time to ingest a reference-manager library as BibTeX (issue 15: a 2,000-item Zotero library, as in
paper-qa #452). Never a timed unit test: run it by hand, on a quiet machine.

    .venv/bin/python evals/bibtex_library.py [--corpus ../shared/benchmarks/scifact/corpus.jsonl]
                                             [--items 2000] [--json out.json]

The library is written from real abstracts (the first N of a BEIR corpus) in the shape Zotero's
BibTeX export has: `@article{key,` with title, author, journal, year, doi and abstract, LaTeX accents
and `{Braced}` words in titles. Then, in a throwaway data dir with the packaged MiniLM, it times
parsing alone (`rag.sources.load`) and `rag ingest library.bib` (parse, chunk, embed, index) as a
user runs it, and a second `rag ingest` of the same file (nothing to embed).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SURNAMES = ["M{\\\"u}ller", "Garc{\\'\\i}a", "Chen", "Okafor", "Nakamura", "Smith", "Dvo{\\v r}{\\'a}k", "Rossi"]


def write_library(corpus: Path, items: int, out: Path) -> int:
    rng = random.Random(15)
    entries = []
    with corpus.open() as fh:
        for n, line in enumerate(fh):
            if n == items:
                break
            doc = json.loads(line)
            authors = " and ".join(f"{rng.choice(SURNAMES)}, {chr(65 + rng.randrange(26))}." for _ in range(3))
            first, _, rest = (doc["title"].replace("{", "").replace("}", "") or f"Untitled {doc['_id']}").partition(" ")
            title = f"{{{first}}} {rest}"  # Zotero braces words whose case must stay
            abstract = doc["text"].replace("{", "(").replace("}", ")").replace("%", "\\%")
            entries.append(f"@article{{doc{doc['_id']},\n\ttitle = {{{title}}},\n\tauthor = {{{authors}}},"
                           f"\n\tjournal = {{Journal of Benchmarks}},\n\tyear = {{{2000 + n % 25}}},"
                           f"\n\tdoi = {{10.5555/bench.{doc['_id']}}},\n\tabstract = {{{abstract}}},\n}}\n")
    out.write_text("\n".join(entries))
    return len(entries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared/benchmarks/scifact/corpus.jsonl")
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bib = Path(tmp) / "library.bib"
        items = write_library(args.corpus, args.items, bib)
        from rag.sources import load

        started = time.perf_counter()
        loaded = load([bib])
        parse_s = time.perf_counter() - started
        env = {**os.environ, "RAG_DATA_DIR": str(Path(tmp) / "data")}
        env.pop("RAG_EMBEDDER", None)
        runs = []
        for _ in range(2):
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "rag.cli", "ingest", str(bib), "--json"], env=env,
                                  capture_output=True, text=True, check=True)
            runs.append((time.perf_counter() - started, json.loads(done.stdout)))
        result = {"items": items, "papers": len(loaded.papers), "rejected": len(loaded.rejected),
                  "bytes": bib.stat().st_size, "parse_s": round(parse_s, 1),
                  "ingest_s": round(runs[0][0], 1), "chunks": runs[0][1]["chunks_embedded"],
                  "reingest_s": round(runs[1][0], 1), "reingest_unchanged": runs[1][1]["unchanged"],
                  "cpus": os.cpu_count()}
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
