"""The public Python API: what `import rag` promises."""
from __future__ import annotations

import subprocess
import sys

import rag
from rag.settings import Settings


def test_public_surface_is_pinned():
    assert sorted(rag.__all__) == ["ask", "ingest", "search"]


def test_import_is_light():
    code = "import sys, rag; heavy = {'torch', 'chromadb', 'sentence_transformers', 'gradio', 'llama_index'}; " \
           "print(sorted(heavy & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_search_and_ask_with_history(seed_dir):
    settings = Settings(data_dir=seed_dir)
    assert "LoRA-GA" in rag.search("LoRA-GA gradient approximation", k=1, settings=settings)[0].title
    answer = rag.ask("And how fast does it converge?", settings=settings,
                     history=[("user", "What does LoRA-GA do?"), ("assistant", "It aligns gradients [1].")])
    assert "LoRA-GA" in answer.query and not answer.refused
