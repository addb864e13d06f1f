"""What `pip install .` (a wheel, not the editable checkout) gets: the prompt templates among it."""
from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from rag.prompts import VARIABLES

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(out), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    return next(out.glob("rag-*.whl"))


def test_the_built_wheel_carries_every_prompt_template(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"rag/templates/{name}.txt" for name in VARIABLES} <= names


def test_the_installed_wheel_ingests_and_answers_from_another_directory(wheel, tmp_path):
    """`pip install .` as a user gets it: a fresh venv holding the wheel alone (not this checkout), run
    from a directory with no repository in sight. Its dependencies come from this venv (a path on
    sys.path, whose editable-install hooks are not run), so no package index is needed."""
    from conftest import FAKE_ENV

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
                              "-q", "--no-deps", str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    site = next(venv.glob("lib/python3*/site-packages"))
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, **FAKE_ENV, "RAG_DATA_DIR": str(tmp_path / "data")}

    def rag(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(venv / "bin" / "rag"), *args], capture_output=True, text=True, env=env,
                              cwd=elsewhere, timeout=300)

    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import rag; print(rag.__file__)"],
                           capture_output=True, text=True, env=env, cwd=elsewhere, timeout=60)
    assert where.stdout.startswith(str(site)), where.stdout + where.stderr
    ingested = rag("ingest", str(ROOT / "tests" / "fixtures" / "sources" / "bibtex_betterbibtex_export_551.bib"))
    assert ingested.returncode == 0, ingested.stderr
    answer = rag("ask", "How does war affect egalitarian motivations in children?")
    assert answer.returncode == 0, answer.stderr
    assert "[1]" in answer.stdout and "Bauer et al. 2014" in answer.stdout


def test_version_names_the_release_model_and_data_dir(tmp_path, monkeypatch):
    from importlib.metadata import version

    from conftest import run_rag

    monkeypatch.delenv("RAG_EMBEDDER", raising=False)  # the tests' fake: a user has the packaged model
    result = run_rag("--version", env={"RAG_DATA_DIR": str(tmp_path / "d")})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"rag {version('rag')}", "embedding model: all-MiniLM-L6-v2",
                                          f"data dir: {tmp_path / 'd'}"]
