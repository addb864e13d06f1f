"""Ingest at arXiv scale without embedding (issue #18, items 3 and 4): memory of the real `rag ingest`
path on a synthetic arXiv-snapshot JSONL, and Chroma upsert throughput by batch size.

    # smoke (a minute or two)
    nice -n 10 .venv/bin/python evals/ingest_scale.py --lines 2000 --chunks 5000 --long-minutes 0.5 \
        --out /tmp/ingest_scale_smoke.json
    # the measured run (evals/results/ingest_scale.json)
    nice -n 10 .venv/bin/python evals/ingest_scale.py --lines 200000 --chunks 100000 --long-minutes 15
    # one part only, or several ingest sizes (each in a fresh process)
    nice -n 10 .venv/bin/python evals/ingest_scale.py --part ingest --lines 25000,50000,100000,200000
    nice -n 10 .venv/bin/python evals/ingest_scale.py --part chroma --chunks 100000 --long-minutes 15

A. Memory. Writes a synthetic JSONL shaped like the arXiv OAI metadata snapshot (id, submitter, authors,
   title, comments, journal-ref, doi, report-no, categories, license, abstract wrapped at ~80 columns,
   versions[{version, created}], update_date, authors_parsed; abstracts of 100-1,920 characters, median
   ~950, as arXiv allows), then runs `rag.ingestion.ingest` on it in a child process, with the real
   tokenizer and chunker but `RandomEmbedder` below (random unit vectors) plugged in through
   `Settings.embedder` ("ingest_scale:RandomEmbedder"; this folder is on the child's sys.path). The parent
   samples the child's VmRSS from /proc every 0.25 s and takes its peak RSS from wait4's rusage
   (ru_maxrss); the child logs its RSS and VmHWM at stage boundaries (parse progress, each window of
   papers chunked and written, every N papers written, the BM25 write) and the seconds spent inside Chroma
   upserts, catalog writes and the per-commit generation bookkeeping. With RAG_CHROMA_URL set (a `chroma
   run` server), the child's memory is rag's alone: the server holds the vectors and their HNSW graph
   (results under "ingest_chroma_server"). `--trace` adds tracemalloc top allocation sites at those
   boundaries (slow; use a small --lines).
B. Chroma upsert. For each batch size (`p128` = rag's own commit, 128 papers' chunks; `max` = the
   client's get_max_batch_size()) x with/without documents, a fresh embedded PersistentClient (one data
   dir each) receives --chunks synthetic chunks (384-d random unit vectors, rag's own chunk metadata from
   `rag.store.chunk_metadata`, first chunk carrying the abstract), through `VectorStore.upsert` itself:
   without documents is rag's own path (each chunk's span of the abstract in its metadata, the text rebuilt
   from the catalog), with documents the same chunks with their text (what rag stored before). All settings
   run in one process, round-robin in slices of --slice chunks, the order rotated every round, so noise
   spreads over all. Then the long run: one setting (--long-batch, default the fastest --long-docs) as far as
   --long-minutes of wall time or --long-max chunks allow, chunks/s per window as the collection grows.

Everything is generated under a temporary directory and deleted; nothing is read from outside.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

DIM = 384
ARXIV_MAX_ABSTRACT = 1920   # arXiv refuses longer abstracts


# --- synthetic text ------------------------------------------------------------------------------------------
class Words:
    """A Zipf-distributed word stream from MiniLM's own vocabulary (whole words, plus compounds that split into
    several word-pieces, as technical terms do), cut into sentences: ~4.5 characters a word-piece, as English
    abstracts tokenize. Deterministic for a seed."""

    def __init__(self, seed: int = 0, pool: int = 2_000_000):
        import re

        import numpy as np

        from rag.embedding import load_tokenizer, resolve_model
        from rag.settings import DEFAULT_MODEL

        vocab = load_tokenizer(resolve_model(DEFAULT_MODEL)).get_vocab()
        ordered = sorted(vocab, key=vocab.get)
        whole = [w for w in ordered if re.fullmatch(r"[a-z]{2,}", w)]
        pieces = [w[2:] for w in ordered if re.fullmatch(r"##[a-z]{2,}", w)]
        rng = np.random.default_rng(seed)
        compounds = [whole[i] + pieces[j] for i, j in zip(rng.integers(0, len(whole), 60_000),
                                                          rng.integers(0, len(pieces), 60_000))]
        words = np.array(whole + compounds, dtype=object)
        rng.shuffle(words[len(whole) // 10:])   # keep the commonest whole words (the, of, ...) at the head
        p = 1 / np.arange(1, len(words) + 1) ** 1.05
        self.pool = list(rng.choice(words, size=pool, p=p / p.sum()))
        self.rng = rng

    def text(self, chars: int, at: int) -> str:
        """About `chars` characters of sentences, from pool position `at` (any int)."""
        out, n, i, sentence = [], 0, at % (len(self.pool) - 2000), 0
        while n < chars:
            w = self.pool[i]
            i += 1
            if sentence == 0:
                w = w.capitalize()
            sentence += 1
            if sentence > 8 and (i * 2654435761) % 11 == 0:   # sentences of ~9-30 words
                w += "."
                sentence = 0
            elif (i * 40503) % 17 == 0:
                w += ","
            elif (i * 69069) % 97 == 0:
                w = f"{(i % 977) / 10:.1f}%"
            elif (i * 69069) % 89 == 0:
                w = "$\\alpha$"
            out.append(w)
            n += len(w) + 1
        return " ".join(out).rstrip(",") + "."


def _wrap(text: str, width: int = 80, indent: str = "  ") -> str:
    """As the snapshot stores abstracts: leading spaces, hard line breaks near 80 columns."""
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return indent + "\n".join(lines) + "\n"


_SYL = ["ba", "ro", "ki", "ma", "te", "lu", "san", "vo", "ne", "chi", "del", "ra", "mo", "zhu", "an", "li", "wei",
        "ko", "par", "son", "gu", "ta", "ri", "ve", "no", "she", "len", "do"]
_CATS = ["cs.LG", "cs.CL", "cs.CV", "cs.AI", "stat.ML", "math.CO", "math.PR", "hep-ph", "hep-th", "quant-ph",
         "astro-ph.GA", "cond-mat.str-el", "physics.optics", "q-bio.NC", "eess.SP", "math.AP", "gr-qc"]
_DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def _name(k: int) -> tuple[str, str]:
    last = "".join(_SYL[(k * p) % len(_SYL)] for p in (7, 13, 3)[: 2 + k % 2]).capitalize()
    first = _SYL[(k * 5) % len(_SYL)].upper()[0] + "."
    return last, first


def arxiv_record(i: int, words: Words, rng) -> dict:
    """Line `i` of a synthetic arXiv OAI snapshot (the fields and shapes of arxiv-metadata-oai-snapshot.json)."""
    year = 2007 + i % 18
    month = 1 + (i // 18) % 12
    arxiv_id = f"{year % 100:02d}{month:02d}.{i:05d}" if i < 100_000 else f"{year % 100:02d}{month:02d}.{i:06d}"
    n_authors = 1 + int(rng.geometric(0.3)) if rng.random() > 0.01 else int(rng.integers(50, 300))
    people = [_name(i * 31 + k) for k in range(n_authors)]
    authors = ", ".join(f"{f} {la}" for la, f in people[:-1])
    authors = f"{authors} and {people[-1][1]} {people[-1][0]}" if len(people) > 1 else f"{people[0][1]} {people[0][0]}"
    chars = int(min(ARXIV_MAX_ABSTRACT, max(100, rng.lognormal(math.log(950), 0.4))))
    title = words.text(int(rng.integers(40, 140)), i * 7919 + 13).rstrip(".")
    versions = [{"version": f"v{v + 1}",
                 "created": f"{_DAYS[(i + v) % 7]}, {1 + (i + v) % 28} {_MONTHS[month - 1]} {year} "
                            f"{(i * 7) % 24:02d}:{(i * 13) % 60:02d}:{(i * 17) % 60:02d} GMT"}
                for v in range(1 + int(rng.integers(0, 3)))]
    has_journal = rng.random() < 0.35
    return {
        "id": arxiv_id,
        "submitter": f"{people[0][1]} {people[0][0]}",
        "authors": authors,
        "title": _wrap(title, 70, "").rstrip("\n").replace("\n", "\n  "),
        "comments": (f"{int(rng.integers(4, 40))} pages, {int(rng.integers(0, 12))} figures"
                     if rng.random() < 0.7 else None),
        "journal-ref": f"Phys. Rev. D {int(rng.integers(1, 110))}, {int(rng.integers(1000, 99999))} ({year})"
        if has_journal else None,
        "doi": f"10.{1000 + i % 9000}/synthetic.{i}" if has_journal or rng.random() < 0.1 else None,
        "report-no": f"REPORT-{year}-{i % 1000:03d}" if rng.random() < 0.05 else None,
        "categories": " ".join(dict.fromkeys(_CATS[int(k)] for k in rng.integers(0, len(_CATS), 1 + i % 3))),
        "license": "http://arxiv.org/licenses/nonexclusive-distrib/1.0/" if rng.random() < 0.6 else None,
        "abstract": _wrap(words.text(chars, i * 104729 + 7)),
        "versions": versions,
        "update_date": f"{year + 1 if year < 2024 else year}-{month:02d}-{1 + i % 28:02d}",
        "authors_parsed": [[la, f, ""] for la, f in people],
    }


def write_snapshot(path: Path, lines: int, seed: int = 0) -> dict:
    import numpy as np

    began = time.perf_counter()
    words, rng = Words(seed), np.random.default_rng(seed + 1)
    chars = []
    with path.open("w", encoding="utf-8") as fh:
        for i in range(lines):
            record = arxiv_record(i, words, rng)
            chars.append(len(" ".join(record["abstract"].split())))
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    chars.sort()
    return {"lines": lines, "bytes": path.stat().st_size, "bytes_per_line": round(path.stat().st_size / lines),
            "abstract_chars": {"mean": round(sum(chars) / lines), "p10": chars[lines // 10], "p50": chars[lines // 2],
                               "p90": chars[9 * lines // 10], "max": chars[-1]},
            "seconds": round(time.perf_counter() - began, 1)}


# --- the fake embedder (the Embedder protocol of rag.embedding) ------------------------------------------------
class RandomEmbedder:
    """Random unit vectors, no model: what ingest costs without embedding. Chunks are cut with the real
    MiniLM tokenizer, so they are the chunks the real model would get."""

    name = "random-384 (ingest_scale fake)"
    fingerprint = "random-384-v1"
    max_tokens = 256
    dim = DIM
    scripts = frozenset({"Latin"})

    def __init__(self, settings=None):
        import numpy as np

        self.settings = settings
        self.rng = np.random.default_rng(0)

    def tokenizer(self):
        from rag.embedding import load_tokenizer, resolve_model
        from rag.settings import DEFAULT_MODEL

        return load_tokenizer(resolve_model(DEFAULT_MODEL))

    def _unit(self, n: int):
        import numpy as np

        v = self.rng.standard_normal((n, self.dim)).astype("float32")
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def encode(self, texts, progress=None):
        out = self._unit(len(texts))
        if progress:
            progress(len(texts))
        return out

    def prepare_queries(self, models_dir: Path) -> None:
        pass

    def query_encoder(self, models_dir: Path):
        embedder = self

        class _Queries:
            def encode(self, text: str):
                return embedder._unit(1)[0]

        return _Queries()


# --- memory of one process -------------------------------------------------------------------------------------
def _status_mb(pid: int | str = "self") -> dict[str, float]:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    out[line.split(":")[0]] = round(int(line.split()[1]) / 1024, 1)
    except (FileNotFoundError, ProcessLookupError, ValueError):
        pass
    return out


def _du_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20, 1)


# --- part A: the ingest child ----------------------------------------------------------------------------------
def child_ingest(jsonl: Path, data_dir: Path, log: Path, every: int, trace: bool) -> None:
    """Runs in the child: `rag.ingestion.ingest` with instrumentation wrapped around (never changed in) rag."""
    import functools

    if trace:
        import tracemalloc

        tracemalloc.start(1)
    t0 = time.perf_counter()
    out = log.open("w", buffering=1)
    timers: dict[str, list[float]] = {}
    snapshots: list = []

    def event(name: str, **extra) -> None:
        row = {"t": round(time.perf_counter() - t0, 2), "event": name, **extra, **{
            k.replace("Vm", "").lower() + "_mb": v for k, v in _status_mb().items()}}
        if trace and name not in ("parsed", "written"):   # stage boundaries only
            import tracemalloc

            current, peak = tracemalloc.get_traced_memory()
            row["traced_mb"], row["traced_peak_mb"] = round(current / 2**20, 1), round(peak / 2**20, 1)
            snapshot = tracemalloc.take_snapshot()
            grew = snapshot.compare_to(snapshots[-1], "lineno")[:6] if snapshots else snapshot.statistics("lineno")[:6]
            snapshots[:] = [snapshot]
            row["grew_since_last"] = [   # the sites that grew most since the previous boundary
                f"{getattr(s, 'size_diff', s.size) / 2**20:+.1f} MB "
                f"{s.traceback[0].filename.split('site-packages/')[-1].split('/main/')[-1]}:{s.traceback[0].lineno}"
                for s in grew]
        out.write(json.dumps(row) + "\n")

    def timed(owner, attr: str, label: str, marks: bool = False):
        original = getattr(owner, attr, None)
        if original is None:
            return
        timers[label] = [0.0, 0]

        @functools.wraps(original)
        def wrapper(*args, **kwargs):
            if marks:
                event(f"{label}:start")
            began = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                timers[label][0] += time.perf_counter() - began
                timers[label][1] += 1
                if marks:
                    event(f"{label}:end")
        setattr(owner, attr, wrapper)

    event("start")
    import bm25s

    import rag.ingestion as ingestion
    import rag.sources as sources
    import rag.store as store
    from rag.settings import Settings
    from rag.store import Catalog, VectorStore

    event("imported")
    parse_file = sources._parse_file

    def counted_parse(path, max_bytes):   # parse progress: every `every` records read
        n = 0
        for item in parse_file(path, max_bytes):
            n += 1
            if n % every == 0:
                event("parsed", lines=n)
            yield item
        event("parsed", lines=n)
    sources._parse_file = counted_parse

    timed(ingestion, "_embed", "window", marks=True)   # one window of papers: chunk, embed, write
    timed(ingestion, "_rebuild_keywords", "bm25_rebuild", marks=True)
    timed(bm25s, "tokenize", "bm25_tokenize")
    timed(store, "_write_bm25", "bm25_write", marks=True)
    timed(Catalog, "add", "catalog_add")
    timed(Catalog, "bump_generation", "catalog_bump")
    timed(Catalog, "set_synced", "catalog_synced")
    timed(ingestion, "_next_generation", "next_generation")
    timed(ingestion, "_publish", "publish")
    timed(ingestion, "room", "room")

    written = {"papers": 0, "chunks": 0, "next": every}
    upsert = VectorStore.upsert

    @functools.wraps(upsert)
    def counted_upsert(self, chunks, vectors, papers, *args, **kwargs):
        result = upsert(self, chunks, vectors, papers, *args, **kwargs)
        written["papers"] += len(papers)
        written["chunks"] += len(chunks)
        if written["papers"] >= written["next"]:
            written["next"] += every
            event("written", papers=written["papers"], chunks=written["chunks"])
        return result
    VectorStore.upsert = counted_upsert
    timed(VectorStore, "upsert", "chroma_upsert")

    seen = {"total": 0}

    def progress(done: int, total: int) -> None:
        if total != seen["total"]:
            seen["total"] = total
            event("chunked", chunks=total)   # a window's papers chunked, before its first write

    settings = Settings(data_dir=data_dir, collection="arxiv", embedder="ingest_scale:RandomEmbedder")
    report = ingestion.ingest([jsonl], settings, progress=progress)
    event("done", papers=report.papers_total, chunks=report.chunks_total, rejected=len(report.rejected),
          duplicates=report.duplicates, ingest_s=round(report.seconds, 1),
          first_rejects=[r.reason for r in report.rejected[:3]],
          timers={k: {"s": round(v[0], 1), "calls": v[1]} for k, v in timers.items()},
          ru_maxrss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
          disk_mb=_du_mb(data_dir))


def run_ingest(jsonl: Path, lines: int, work: Path, trace: bool) -> dict:
    """One ingest of the first `lines` lines in a fresh child process and data dir, sampled from outside."""
    src = work / f"arxiv-{lines}.jsonl"
    with jsonl.open("rb") as full, src.open("wb") as part:
        for _, line in zip(range(lines), full):
            part.write(line)
    data_dir, log = work / f"data-{lines}", work / f"ingest-{lines}.log"
    every = max(500, lines // 40)
    path = [str(HERE), str(ROOT), os.environ.get("PYTHONPATH")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p)}
    env.pop("RAG_EMBEDDER", None)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "ingest", str(src), str(data_dir), str(log),
           str(every), "1" if trace else "0"]
    began = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env)
    samples, usage, status = [], None, 0
    while usage is None:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            usage = ru
            break
        rss = _status_mb(proc.pid).get("VmRSS")
        if rss is not None:
            samples.append((round(time.perf_counter() - began, 2), rss))
        time.sleep(0.25)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - began
    events = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
    if proc.returncode != 0 or not events or events[-1]["event"] != "done":
        raise SystemExit(f"ingest child failed (exit {proc.returncode}); log: {log}")
    done = events[-1]
    shutil.rmtree(data_dir, ignore_errors=True)
    src.unlink()

    def at(kind: str, key: str, marks: list[int]) -> dict:
        rows = [e for e in events if e["event"] == kind]
        return {str(m): next(({"t": e["t"], "rss_mb": e["rss_mb"], "hwm_mb": e["hwm_mb"]}
                              for e in rows if e[key] >= m), None) for m in marks}

    marks = sorted({m for m in (25_000, 50_000, 100_000, 200_000, lines // 8, lines // 4, lines // 2, lines)
                    if 0 < m <= lines})
    keep = ("t", "event", "rss_mb", "hwm_mb", "traced_mb", "traced_peak_mb", "grew_since_last", "chunks", "papers")
    stages = [{k: e[k] for k in e if k in keep}
              for e in events if e["event"] not in ("parsed", "written")]
    step = max(1, len(samples) // 200)
    return {
        "lines": lines, "papers": done["papers"], "chunks": done["chunks"], "rejected": done["rejected"],
        "first_rejects": done["first_rejects"], "duplicates": done["duplicates"],
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "peak_rss_sampled_mb": max((s[1] for s in samples), default=None),
        "wall_s": round(wall, 1), "ingest_s": done["ingest_s"],
        "papers_per_s": round(done["papers"] / done["ingest_s"], 1),
        "chunks_per_paper": round(done["chunks"] / max(1, done["papers"]), 3),
        "disk_mb": done["disk_mb"],
        "time_in": done["timers"],
        "rss_when_parsed_lines": at("parsed", "lines", marks),
        "rss_when_written_papers": at("written", "papers", marks),
        "stages": stages,
        "rss_samples": samples[::step] + ([samples[-1]] if samples and (len(samples) - 1) % step else []),
    }


# --- part B: Chroma upserts ------------------------------------------------------------------------------------
class ChunkSource:
    """Deterministic synthetic papers -> (chunks, vectors, papers) batches, as rag would upsert them: papers
    read by rag's own arXiv reader from `arxiv_record`s, chunked by characters (1 chunk up to ~1,100
    characters of title + abstract, else 2 overlapping), so chunk text and metadata are of realistic size."""

    def __init__(self, seed: int = 0):
        self.words = Words(seed)

    def paper(self, i: int):
        import numpy as np

        from rag.sources import Paper
        from rag.sources.records import _record

        rec = _record(arxiv_record(i, self.words, np.random.default_rng(i)), "synthetic.jsonl", f"line {i + 1}")
        return Paper(rec.own_id, rec.title, rec.abstract, rec.source, rec.authors, rec.date, rec.meta)

    def batch(self, start: int, chunks_wanted: int | None, papers_wanted: int | None = None):
        import numpy as np

        from rag.chunking import Chunk

        chunks, papers, i = [], {}, start
        while (len(chunks) < chunks_wanted) if chunks_wanted else (len(papers) < papers_wanted):
            p = self.paper(i)
            head, body = f"{p.title}\n", p.abstract
            if len(head) + len(body) <= 1100:
                parts = [body]
            else:
                cut = body.rfind(" ", 0, len(body) // 2 + 100)
                parts = [body[:cut], body[max(0, cut - 150):]]
            starts = [0, max(0, cut - 150)] if len(parts) == 2 else [0]
            chunks += [Chunk(f"{p.paper_id}:{n}", p.paper_id, n, head + t, (s, s + len(t)))
                       for n, (s, t) in enumerate(zip(starts, parts))]
            papers[p.paper_id] = p
            i += 1
        v = np.random.default_rng(start).standard_normal((len(chunks), DIM)).astype("float32")
        return chunks, v / np.linalg.norm(v, axis=1, keepdims=True), papers, i


class Setting:
    def __init__(self, root: Path, batch: str, docs: bool, max_batch: int | None = None):
        from rag.settings import Settings
        from rag.store import VectorStore

        self.batch, self.docs = batch, docs
        self.label = f"{batch}/{'docs' if docs else 'no-docs'}"
        self.dir = root / self.label.replace("/", "-")
        self.store = VectorStore(Settings(data_dir=self.dir, collection="bench"), "bench")
        self.max_batch = max_batch or self.store.client().get_max_batch_size()
        self.paper, self.chunks, self.upsert_s, self.cpu_s, self.calls, self.make_s = 0, 0, 0.0, 0.0, 0, 0.0

    def sizes(self) -> tuple[int | None, int | None]:
        if self.batch.startswith("p"):
            return None, int(self.batch[1:])
        return (self.max_batch if self.batch == "max" else int(self.batch)), None

    def step(self, source: ChunkSource) -> int:
        """Generate one batch (untimed) and upsert it (timed). Returns its chunk count."""
        began = time.perf_counter()
        chunks_wanted, papers_wanted = self.sizes()
        chunks, vectors, papers, self.paper = source.batch(self.paper, chunks_wanted, papers_wanted)
        if chunks_wanted:   # whole papers make a batch; never more than asked (the client's limit)
            while len(chunks) > chunks_wanted:
                pid = chunks.pop().paper_id
                vectors = vectors[:-1]
                self.paper -= pid not in {c.paper_id for c in chunks}
            papers = {c.paper_id: papers[c.paper_id] for c in chunks}
        self.make_s += time.perf_counter() - began
        wall, cpu = time.perf_counter(), time.process_time()
        # rag's own call: without documents, each chunk's span of the abstract in its metadata; with them, the
        # same chunks with their text (as rag stored every chunk before, and still a chunk whose title was cut)
        self.store.upsert(chunks if not self.docs else [replace(c, span=None) for c in chunks], vectors, papers, 1)
        self.upsert_s += time.perf_counter() - wall
        self.cpu_s += time.process_time() - cpu
        self.calls += 1
        self.chunks += len(chunks)
        return len(chunks)


def child_grid(n: int, batches: list[str], slice_size: int, out: Path) -> None:
    source = ChunkSource()
    root = Path(tempfile.mkdtemp(prefix="rag-upsert-grid-", dir=out.parent))
    try:
        first = Setting(root, batches[0], True)
        settings = [first] + [Setting(root, b, d, first.max_batch) for b in batches for d in (True, False)
                              if (b, d) != (batches[0], True)]
        rounds = math.ceil(n / slice_size)
        for r in range(rounds):
            order = settings[r % len(settings):] + settings[:r % len(settings)]
            for s in order if r % 2 == 0 else order[::-1]:
                while s.chunks < min(n, (r + 1) * slice_size):
                    s.step(source)
            rates = ", ".join(f"{s.label} {s.chunks / s.upsert_s:,.0f}/s" for s in settings)
            print(f"  round {r + 1}/{rounds}: {rates}", file=sys.stderr, flush=True)
            _grid_out(out, first.max_batch, settings, r + 1, rounds)   # a run stopped early keeps what it measured
        for s in settings:
            s.store.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _grid_out(out: Path, max_batch: int, settings: list[Setting], done: int, rounds: int) -> None:
    rows = [{"batch": s.batch, "batch_chunks": s.sizes()[0] or round(s.chunks / s.calls, 1),
             "documents": s.docs, "chunks": s.chunks, "stored": s.store.collection(create=False).count(),
             "calls": s.calls, "upsert_s": round(s.upsert_s, 1), "chunks_per_s": round(s.chunks / s.upsert_s, 1),
             "chunks_per_cpu_s": round(s.chunks / s.cpu_s, 1), "cpu_per_wall": round(s.cpu_s / s.upsert_s, 2),
             "disk_mb": _du_mb(s.dir), "generate_s": round(s.make_s, 1)} for s in settings]
    out.write_text(json.dumps({"max_batch_size": max_batch, "rounds_done": done, "rounds": rounds, "rows": rows,
                               "load_avg_1m": os.getloadavg()[0],
                               "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))


def child_long(batch: str, docs: bool, minutes: float, cap: int, window: int, out: Path) -> None:
    source = ChunkSource()
    root = Path(tempfile.mkdtemp(prefix="rag-upsert-long-", dir=out.parent))
    try:
        s = Setting(root, batch, docs)
        began, rows, last = time.perf_counter(), [], (0, 0.0, 0.0)   # (chunks, upsert s, upsert cpu s)
        while time.perf_counter() - began < minutes * 60 and s.chunks < cap:
            s.step(source)
            if s.chunks - last[0] >= window or s.chunks >= cap or time.perf_counter() - began >= minutes * 60:
                rows.append({"chunks": s.chunks, "upsert_s": round(s.upsert_s, 1),
                             "wall_s": round(time.perf_counter() - began, 1),
                             "window_chunks_per_s": round((s.chunks - last[0]) / (s.upsert_s - last[1]), 1),
                             "cumulative_chunks_per_s": round(s.chunks / s.upsert_s, 1),
                             # CPU seconds of this process in the upserts: what other users of the machine
                             # take from the wall-clock rate, they cannot take from this one
                             "window_chunks_per_cpu_s": round((s.chunks - last[0]) / (s.cpu_s - last[2]), 1),
                             "load_avg_1m": os.getloadavg()[0],
                             "rss_mb": _status_mb().get("VmRSS"), "disk_mb": _du_mb(s.dir)})
                last = (s.chunks, s.upsert_s, s.cpu_s)
                print(f"  {json.dumps(rows[-1])}", file=sys.stderr, flush=True)
                out.write_text(json.dumps({   # after every window: a run stopped early keeps what it measured
                    "batch": batch, "batch_chunks": s.sizes()[0] or round(s.chunks / s.calls, 1), "documents": docs,
                    "minutes": minutes, "stored": s.store.collection(create=False).count(),
                    "generate_s": round(s.make_s, 1), "windows": rows,
                    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
        s.store.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def extrapolate(windows: list[dict], target: int = 1_000_000) -> dict | None:
    """Seconds of upsert to reach `target` chunks: measured up to the last window, then (a) the last window's
    rate held, (b) a least-squares line of seconds-per-chunk against collection size over the later half of
    the windows, integrated. Both are extrapolations when the run stopped short of `target`."""
    if not windows:
        return None
    last = windows[-1]
    if last["chunks"] >= target:
        reached = next(w for w in windows if w["chunks"] >= target)
        return {"measured": True, "upsert_s": reached["upsert_s"], "minutes": round(reached["upsert_s"] / 60, 1)}
    rest = target - last["chunks"]
    flat = last["upsert_s"] + rest / last["window_chunks_per_s"]
    later = windows[len(windows) // 2:]
    xs = [w["chunks"] for w in later]
    ys = [1 / w["window_chunks_per_s"] for w in later]
    out = {"measured": False, "from_chunks": last["chunks"],
           "flat_rate_upsert_s": round(flat), "flat_rate_minutes": round(flat / 60, 1)}
    if len(xs) >= 2:
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / (sum((x - mx) ** 2 for x in xs) or 1)
        a = my - slope * mx   # seconds per chunk at size x: a + slope * x; integrate over [last, target]
        extra = a * rest + slope * (target ** 2 - last["chunks"] ** 2) / 2
        out |= {"linear_trend_upsert_s": round(last["upsert_s"] + extra),
                "linear_trend_minutes": round((last["upsert_s"] + extra) / 60, 1),
                "s_per_chunk_slope_per_100k": slope * 100_000}
    return out


# --- driver ----------------------------------------------------------------------------------------------------
def _child(args: list[str]) -> None:
    kind = args[0]
    if kind == "ingest":
        child_ingest(Path(args[1]), Path(args[2]), Path(args[3]), int(args[4]), args[5] == "1")
    elif kind == "grid":
        child_grid(int(args[1]), args[2].split(","), int(args[3]), Path(args[4]))
    elif kind == "long":
        child_long(args[1], args[2] == "1", float(args[3]), int(args[4]), int(args[5]), Path(args[6]))


def _run_child(args: list[str], out: Path) -> dict:
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", *args])
    if done.returncode != 0:
        if not out.is_file():
            raise SystemExit(f"the {args[0]} child failed (exit {done.returncode}) before measuring anything")
        print(f"the {args[0]} child stopped early (exit {done.returncode}): keeping what it measured",
              file=sys.stderr, flush=True)
    return {**json.loads(out.read_text()), **({"stopped_early_exit": done.returncode} if done.returncode else {})}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["all", "ingest", "chroma", "grid", "long"], default="all",
                        help="chroma = grid then long; long alone needs --long-batch")
    parser.add_argument("--lines", default="2000", help="ingest sizes, comma-separated (each a fresh process)")
    parser.add_argument("--trace", action="store_true", help="tracemalloc top sites at stage boundaries (slow)")
    parser.add_argument("--chunks", type=int, default=5000, help="chunks per setting of the batch-size grid")
    parser.add_argument("--batches", default="p128,500,1000,2000,5000,max",
                        help="grid batch sizes in chunks; pN = N papers a batch (rag's commit); max = client's limit")
    parser.add_argument("--slice", type=int, default=10_000, help="round-robin slice of the grid, in chunks")
    parser.add_argument("--long-minutes", type=float, default=0.5, help="wall time of the long run (0: skip)")
    parser.add_argument("--long-batch", help="batch of the long run; default: the fastest with documents")
    parser.add_argument("--long-docs", choices=["yes", "no"], default="no", help="no: rag's own path")
    parser.add_argument("--long-max", type=int, default=1_000_000, help="stop the long run here")
    parser.add_argument("--window", type=int, default=25_000, help="long-run reporting window, in chunks")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "ingest_scale.json")
    args = parser.parse_args()

    result: dict = json.loads(args.out.read_text()) if args.out.is_file() else {}
    result["machine"] = {"cpus": os.cpu_count(), "nice": os.nice(0), "python": sys.version.split()[0]}
    try:
        import chromadb

        result["machine"]["chromadb"] = chromadb.__version__
    except ImportError:
        pass
    with tempfile.TemporaryDirectory(prefix="rag-ingest-scale-") as tmp:
        work = Path(tmp)
        if args.part in ("all", "ingest"):
            sizes = [int(s) for s in args.lines.split(",")]
            jsonl = work / "arxiv-snapshot.jsonl"
            print(f"writing a synthetic snapshot of {max(sizes):,} lines", file=sys.stderr, flush=True)
            snapshot = write_snapshot(jsonl, max(sizes))
            print(f"  {snapshot}", file=sys.stderr, flush=True)
            runs = []
            for n in sizes:
                print(f"ingest of {n:,} lines", file=sys.stderr, flush=True)
                runs.append(run_ingest(jsonl, n, work, args.trace))
                row = {k: v for k, v in runs[-1].items() if k not in ("rss_samples", "stages")}
                print(f"  {json.dumps(row)}", file=sys.stderr, flush=True)
            jsonl.unlink()
            key = "ingest_trace" if args.trace else "ingest_chroma_server" if os.environ.get("RAG_CHROMA_URL") \
                else "ingest"
            result[key] = {"command": " ".join(sys.argv), "snapshot": snapshot, "runs": runs,
                           "chroma": "server (RAG_CHROMA_URL)" if os.environ.get("RAG_CHROMA_URL") else "embedded"}
        if args.part in ("all", "chroma", "grid"):
            batches = args.batches.split(",")
            print(f"Chroma upsert grid: {batches} x documents yes/no, {args.chunks:,} chunks each", file=sys.stderr,
                  flush=True)
            grid = _run_child(["grid", str(args.chunks), ",".join(batches), str(args.slice), str(work / "grid.json")],
                              work / "grid.json")
            result["upsert_grid"] = {"command": " ".join(sys.argv), **grid}
        if args.part in ("all", "chroma", "long") and args.long_minutes > 0:
            docs = args.long_docs == "yes"
            if not args.long_batch and "upsert_grid" not in result:
                raise SystemExit("--part long needs --long-batch (or a grid in --out to pick it from)")
            candidates = [r for r in result.get("upsert_grid", {}).get("rows", []) if r["documents"] == docs]
            batch = args.long_batch or max(candidates, key=lambda r: r["chunks_per_s"])["batch"]
            print(f"long run: batch {batch}, documents {docs}, {args.long_minutes} min", file=sys.stderr, flush=True)
            long = _run_child(["long", batch, "1" if docs else "0", str(args.long_minutes), str(args.long_max),
                               str(args.window), str(work / "long.json")], work / "long.json")
            long["to_1m_chunks"] = extrapolate(long["windows"])
            result["upsert_long_documents" if docs else "upsert_long"] = {"command": " ".join(sys.argv), **long}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    summary(result)


def summary(result: dict) -> None:
    for run in [r for key in ("ingest", "ingest_chroma_server") for r in result.get(key, {}).get("runs", [])]:
        print(f"ingest {run['lines']:,} lines: {run['papers']:,} papers, {run['chunks']:,} chunks, peak RSS "
              f"{run['peak_rss_mb']:,.0f} MB, {run['ingest_s']} s ({run['papers_per_s']} papers/s)")
        for stage in run["stages"]:
            print(f"    {stage['t']:>8} s  {stage['event']:<22} rss {stage.get('rss_mb')} MB  "
                  f"hwm {stage.get('hwm_mb')} MB")
    if grid := result.get("upsert_grid"):
        print(f"upsert grid (max_batch_size {grid['max_batch_size']}):")
        print("| batch | chunks a call | documents | chunks/s | cpu/wall | disk MB |")
        for r in grid["rows"]:
            print(f"| {r['batch']} | {r['batch_chunks']} | {r['documents']} | {r['chunks_per_s']:,.0f} | "
                  f"{r['cpu_per_wall']} | {r['disk_mb']:,.0f} |")
    for key in ("upsert_long", "upsert_long_documents"):
        if long := result.get(key):
            print(f"long run ({long['batch']}, documents {long['documents']}): to 1M chunks {long['to_1m_chunks']}")


if __name__ == "__main__":
    main()
