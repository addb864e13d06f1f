"""The CPU encoders ingest embeds with (onnxruntime, fp32 and int8) against the torch vectors older indexes
hold, and the precision an index records: it is searched and extended with the encoder that built it.
One small real-model data dir for the module: a collection built at each precision."""
from __future__ import annotations

import pytest
from conftest import SEEDS, write_jsonl

from rag.settings import DEFAULT_MODEL, Settings

PAPERS = 6


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A data dir holding collection `int8` and collection `fp32` (the same few seed papers), so both
    exports sit under its models/."""
    from rag.ingestion import ingest
    from rag.sources import load

    tmp = tmp_path_factory.mktemp("precision")
    papers = load([SEEDS]).papers[:PAPERS]
    source = write_jsonl(tmp / "papers.jsonl", [{"id": p.paper_id, "title": p.title, "abstract": p.abstract}
                                                 for p in papers])
    for precision in ("int8", "fp32"):
        ingest([source], Settings(data_dir=tmp / "data", collection=precision, embedder=None,
                                  embed_precision=precision))
    return tmp / "data", source


def _model():
    from rag.embedding import resolve_model

    return resolve_model(DEFAULT_MODEL)


def test_onnx_vectors_match_torch_row_by_row_whatever_the_length_order(built, real_model):
    import numpy as np

    from rag.embedding import DocEncoder, OnnxDocEncoder, precision_fingerprint
    from rag.sources import load

    data, _ = built
    model = _model()
    papers = load([SEEDS]).papers[:PAPERS]
    # Lengths out of order (a title alone, abstracts, a title + abstract), so the length sort must be undone.
    texts = [papers[0].title, papers[1].abstract, f"{papers[2].title}\n{papers[2].abstract}", "short query",
             papers[3].abstract[:300], papers[4].abstract]
    reference = DocEncoder(model, "cpu").encode(texts)
    for precision, floor in (("fp32", 0.999), ("int8", 0.99)):
        encoder = OnnxDocEncoder(model, data / "models" / precision_fingerprint(model, precision), batch_size=4)
        done: list[int] = []
        vectors = encoder.encode(texts, progress=done.append)
        cosines = (vectors * reference).sum(axis=1)
        assert cosines.min() >= floor, (precision, cosines)
        assert sum(done) == len(texts) and len(done) == 2   # batches of at most 4
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)



def test_the_gpu_encoder_gives_the_same_vectors_in_order_on_the_cpu(real_model):
    """`--device cuda` runs TorchDocEncoder (fp16 there); the same code with device=cpu (fp32) is checked here:
    texts tokenized a group ahead, length-sorted batches, vectors back in the order given."""
    from rag.embedding import DocEncoder, TorchDocEncoder
    from rag.sources import load

    model = _model()
    papers = load([SEEDS]).papers[:6]
    texts = [papers[0].title, papers[1].abstract, "short query", f"{papers[2].title}\n{papers[2].abstract}",
             papers[3].abstract[:300], papers[4].abstract, papers[5].title]
    reference = DocEncoder(model, "cpu").encode(texts)
    encoder = TorchDocEncoder(model, "cpu", batch_size=2)
    encoder.GROUP_BATCHES = 2   # groups of 4 texts: the second group is tokenized while the first runs
    done: list[int] = []
    vectors = encoder.encode(texts, progress=done.append)
    assert ((vectors * reference).sum(axis=1)).min() >= 0.9999
    assert sum(done) == len(texts) and max(done) <= 2
    assert encoder.encode([]).shape == (0, reference.shape[1])

def test_an_int8_index_records_it_and_is_searched_with_int8_whatever_the_settings_say(built, real_model):
    import numpy as np

    from rag.embedding import QueryEncoder, precision_fingerprint
    from rag.retrieval import Retriever
    from rag.store import status

    data, _ = built
    model = _model()
    info = status(Settings(data_dir=data, collection="int8"))
    assert info["model_fingerprint"] == precision_fingerprint(model, "int8") == f"{model.fingerprint}-int8v2"
    assert info["embed_model"] == f"{DEFAULT_MODEL} (int8)"
    retriever = Retriever(Settings(data_dir=data, collection="int8", embed_precision="fp32"))
    assert retriever.embedder.fingerprint == info["model_fingerprint"]
    query = "parameter-efficient fine-tuning of language models"
    int8 = QueryEncoder(model, data / "models" / precision_fingerprint(model, "int8")).encode(query)
    fp32 = QueryEncoder(model, data / "models" / model.fingerprint).encode(query)
    assert np.array_equal(retriever.embed_query(query), int8)
    assert float(int8 @ fp32) < 0.99999   # the two encoders differ, so the check above tells them apart
    assert retriever.search(query, k=3)


def test_an_fp32_index_keeps_the_fingerprint_older_torch_indexes_carry_and_grows_in_fp32(built, real_model,
                                                                                       tmp_path):
    from rag.ingestion import ingest
    from rag.retrieval import Retriever
    from rag.sources import load
    from rag.store import status

    data, source = built
    model = _model()
    settings = Settings(data_dir=data, collection="fp32")   # an index from before int8 was the default
    assert settings.embed_precision == "int8"
    assert status(settings)["model_fingerprint"] == model.fingerprint   # what indexes built with torch record
    assert status(settings)["embed_model"] == DEFAULT_MODEL
    retriever = Retriever(settings)   # opens without re-embedding, and queries in fp32
    assert retriever.embedder.fingerprint == model.fingerprint
    assert retriever.search("low-rank adaptation", k=3)

    extra = load([SEEDS]).papers[PAPERS]
    more = write_jsonl(tmp_path / "more.jsonl", [{"id": extra.paper_id, "title": extra.title,
                                                  "abstract": extra.abstract}])
    report = ingest([source, more], settings)   # the default (int8) is not asked for: grown quietly in fp32
    assert (report.added, report.unchanged, report.notes) == (1, PAPERS, [])
    assert status(settings)["model_fingerprint"] == model.fingerprint
    extra = load([SEEDS]).papers[PAPERS + 1]
    write_jsonl(more, [{"id": extra.paper_id, "title": extra.title, "abstract": extra.abstract}])
    report = ingest([source, more], Settings(data_dir=data, collection="fp32", embed_precision="int8"))
    assert (report.added, status(settings)["model_fingerprint"]) == (1, model.fingerprint)
    assert any("built with all-MiniLM-L6-v2 vectors" in note for note in report.notes)   # asked int8 outright


def test_a_new_data_dir_takes_the_export_from_the_machine_cache_and_an_unwritable_cache_is_passed_by(
        built, real_model, model_cache, tmp_path):
    """The ONNX export (~10 s of a first ingest) is made once a machine: a second data dir gets the cached
    file (linked, so not exported again), and a cache that cannot be written costs an export, not the ingest."""
    import os

    from rag.embedding import cache_name, precision_fingerprint
    from rag.ingestion import ingest
    from rag.retrieval import Retriever

    data, source = built
    model = _model()
    cached = model_cache / cache_name(model, "int8") / "model.onnx"
    assert cached.is_file()   # made by `built`'s first ingest
    ingest([source], Settings(data_dir=tmp_path / "second", embedder=None))
    export = tmp_path / "second" / "models" / precision_fingerprint(model, "int8") / "model.onnx"
    assert os.path.samefile(export, cached)
    assert Retriever(Settings(data_dir=tmp_path / "second")).search("low-rank adaptation", k=3)

    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache would go")
    report = ingest([source], Settings(data_dir=tmp_path / "third", embedder=None, model_cache=blocked))
    export = tmp_path / "third" / "models" / precision_fingerprint(model, "int8") / "model.onnx"
    assert report.added == PAPERS and export.is_file() and not os.path.samefile(export, cached)
    assert Retriever(Settings(data_dir=tmp_path / "third")).search("low-rank adaptation", k=3)
    assert Settings(model_cache="").model_cache is None   # RAG_MODEL_CACHE= turns it off
