"""What `pip install .` (a wheel, not the editable checkout) gets: the prompt templates among it."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from rag.prompts import VARIABLES

ROOT = Path(__file__).resolve().parent.parent


def test_the_built_wheel_carries_every_prompt_template(tmp_path):
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    names = set(zipfile.ZipFile(next(tmp_path.glob("rag-*.whl"))).namelist())
    assert {f"rag/templates/{name}.txt" for name in VARIABLES} <= names


def test_version_names_the_release_model_and_data_dir(tmp_path, monkeypatch):
    from importlib.metadata import version

    from conftest import run_rag

    monkeypatch.delenv("RAG_EMBEDDER", raising=False)  # the tests' fake: a user has the packaged model
    result = run_rag("--version", env={"RAG_DATA_DIR": str(tmp_path / "d")})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"rag {version('rag')}", "embedding model: all-MiniLM-L6-v2",
                                          f"data dir: {tmp_path / 'd'}"]
