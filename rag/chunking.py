"""Paper → chunks. Each chunk carries the paper's title and fits what the embedder reads.

all-MiniLM-L6-v2 reads 256 word-pieces (two of them [CLS]/[SEP]); seed abstracts
average about 300, so an unchunked abstract would lose its end. llama-index's
SentenceSplitter does the sentence-aware splitting, measured with the embedder's own
tokenizer, into passages that leave room for the title.

Sentences are found by `sentences` below, not by the splitter's default (NLTK's punkt): importing NLTK pulls
in scipy.stats and its first use loads punkt, about 2 s that were an eighth of `rag ingest` of 300
abstracts, and punkt costs a further ~1 ms an abstract. On the first 2,000 SciFact abstracts 1,963 are
chunked identically either way; the rest differ in where one chunk ends (punkt too splits at "vs.").
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tokenizers import Tokenizer

    from rag.sources import Paper

SPECIAL_TOKENS = 2  # [CLS] and [SEP]
MAX_TITLE_TOKENS = 64  # a runaway "title" must not crowd out the abstract

# A sentence ends at . ! or ? (and any closing quote or bracket), then space, then what can start one.
_BOUNDARY = re.compile(r"""[.!?]["')\]]*\s+(?=["'(\[]?[A-Z0-9])""")
# Words whose full stop does not end a sentence: "et al. Smith", "Fig. 2", "vs. 12", "e.g. IL-6".
# (Not single capitals: "vitamin D. The" ends a sentence far more often in an abstract than an initial does.)
_NO_END = re.compile(r"\b(?:al|e\.g|i\.e|cf|vs|approx|ca|Fig|Figs|Eq|Eqs|Ref|Refs|No|Nos|Dr|Prof|Mr|Mrs|Ms|St|"
                     r"Jr|Sr|Inc|Ltd|Co|Corp|Dept|Univ|Vol|pp|resp|viz|sp|spp|var|subsp|nov|Jan|Feb|Mar|Apr|"
                     r"Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\.$")


def sentences(text: str) -> list[str]:
    """`text` cut into sentences, each with the whitespace after it: together they are `text` again, so a
    passage made of them is found in the abstract (its span)."""
    out, at = [], 0
    for end in _BOUNDARY.finditer(text):
        if not _NO_END.search(text, at, end.start() + 1):
            out.append(text[at:end.end()])
            at = end.end()
    if at < len(text):
        out.append(text[at:])
    return out


@dataclass(frozen=True)
class Chunk:
    chunk_id: str     # "<paper_id>:<n>": stable, so re-ingest upserts instead of duplicating
    paper_id: str
    n: int
    text: str         # title + "\n" + passage: what is embedded
    # Where the passage lies in the abstract, when the text is exactly title + "\n" + abstract[start:end]:
    # then the index keeps only these two numbers, not the text (rebuilt from the catalog).
    span: tuple[int, int] | None = None


class Chunker:
    def __init__(self, tokenizer: Tokenizer, max_tokens: int, overlap: int):
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.overlap = overlap
        self._splitters: dict[int, object] = {}

    def count(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def _splitter(self, size: int):
        """A splitter for passages of `size` word-pieces: the chunk's room once the title is in.
        (llama-index's `split_text_metadata_aware` does the same sum but prints a warning to stdout
        whenever the title takes most of a small chunk, which here is by design.)"""
        if size not in self._splitters:
            from llama_index.core.node_parser import SentenceSplitter

            self._splitters[size] = SentenceSplitter(
                chunk_size=size, chunk_overlap=min(self.overlap, size // 4), chunking_tokenizer_fn=sentences,
                tokenizer=lambda text: self.tokenizer.encode(text, add_special_tokens=False).ids)
        return self._splitters[size]

    def _title(self, paper: Paper) -> str:
        title = paper.title
        # Small chunks keep two thirds of their room for the passage.
        cap = min(MAX_TITLE_TOKENS, self.max_tokens // 3)
        if title and self.count(title) > cap:
            ids = self.tokenizer.encode(title, add_special_tokens=False).ids[:cap]
            title = self.tokenizer.decode(ids)
        return title

    def chunks(self, paper: Paper) -> list[Chunk]:
        title = self._title(paper)
        head = f"{title}\n" if title else ""
        budget = self.max_tokens - SPECIAL_TOKENS
        if self.count(head + paper.abstract) <= budget:
            passages = [paper.abstract]
        else:
            passages = self._splitter(budget - self.count(head)).split_text(paper.abstract)
        whole = head == (f"{paper.title}\n" if paper.title else "")   # else the title was cut
        chunks, at = [], 0
        for p in passages:
            if not p.strip():
                continue
            start = paper.abstract.find(p, at) if whole else -1
            at = start + 1 if start >= 0 else at
            chunks.append(Chunk(f"{paper.paper_id}:{len(chunks)}", paper.paper_id, len(chunks), head + p,
                                (start, start + len(p)) if start >= 0 else None))
        return chunks
