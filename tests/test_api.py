"""The public Python API: what `import rag` promises."""
from __future__ import annotations

import inspect
import subprocess
import sys

from conftest import synthetic_papers, write_jsonl

import rag


def test_public_surface_is_what_the_package_defines():
    # As httpx does it: derived from the module, so a new public function that is not exported
    # (or an export that no longer exists) fails here.
    defined = sorted(name for name, obj in vars(rag).items()
                     if not name.startswith("_") and getattr(obj, "__module__", None) == "rag")
    assert sorted(rag.__all__) == defined
    for name in rag.__all__:
        assert inspect.getdoc(getattr(rag, name)) or name in rag.__doc__, f"rag.{name} is undocumented"


def test_import_is_light():
    code = "import sys, rag; heavy = {'torch', 'chromadb', 'sentence_transformers', 'gradio', 'llama_index'}; " \
           "print(sorted(heavy & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_search_and_ask_with_history(seed_settings):
    settings = seed_settings
    assert "LoRA-GA" in rag.search("LoRA-GA gradient approximation", k=1, settings=settings)[0].title
    answer = rag.ask("And how fast does it converge?", settings=settings,
                     history=[("user", "What does LoRA-GA do?"), ("assistant", "It aligns gradients [1].")])
    assert "LoRA-GA" in answer.query and not answer.refused


def test_the_api_can_be_called_again(tmp_path):
    # A submodule named like one of these functions would rebind it on first import: `rag.ingest`
    # once turned into the module `rag/ingest.py` after its first call.
    source = write_jsonl(tmp_path / "papers.jsonl", synthetic_papers(2))
    assert rag.ingest([source]).added == 2
    assert rag.ingest([source]).unchanged == 2
    assert rag.search("synthetic study", k=1) and rag.search("synthetic study", k=1)
    assert rag.ask("synthetic study of model data").sources and rag.ask("synthetic study").sources
