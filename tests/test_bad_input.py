"""Bad input gets one clear line, a non-zero exit where the command failed, and the index untouched."""
from __future__ import annotations

import json
import re
import shutil

import pytest
from conftest import SEEDS, run_rag, synthetic_papers, write_jsonl

from rag.ingestion import ingest
from rag.settings import Settings


@pytest.fixture
def index_copy(fake_seed_dir, tmp_path):
    """A private copy of the seed index, so a test may try to damage it."""
    target = tmp_path / "index"
    shutil.copytree(fake_seed_dir, target)
    return target


def _status(data_dir) -> dict:
    from rag.store import status

    info = status(Settings(data_dir=data_dir))
    return {k: info[k] for k in ("papers", "chunks", "files")}


def _bad_files(tmp_path):
    cases = {}
    (tmp_path / "empty.txt").write_text("")
    cases["empty"] = (tmp_path / "empty.txt", "empty")
    (tmp_path / "blob.bin").write_bytes(bytes(range(256)) * 64)
    cases["binary"] = (tmp_path / "blob.bin", "binary")
    (tmp_path / "latin1.txt").write_bytes("Résumé of a paper\n\nÀ study of caf\xe9s".encode("latin-1"))
    cases["non-utf8"] = (tmp_path / "latin1.txt", "UTF-8")
    write_jsonl(tmp_path / "weird.jsonl", [{"foo": 1, "bar": "x"}, {"foo": 2, "bar": "y"}])
    cases["unknown schema"] = (tmp_path / "weird.jsonl", "saw fields: foo, bar")
    nothing = tmp_path / "nothing"
    nothing.mkdir()
    (nothing / "a.txt").write_text("   \n\n")
    (nothing / "b.dat").write_bytes(b"\x00\x01\x02")
    cases["dir with nothing parsable"] = (nothing, "no papers found")
    cases["missing path"] = (tmp_path / "does-not-exist.jsonl", "no such file")
    return cases


@pytest.mark.parametrize("case", ["empty", "binary", "non-utf8", "unknown schema", "dir with nothing parsable",
                                  "missing path"])
def test_failed_ingest_leaves_index_untouched(index_copy, tmp_path, case):
    path, message = _bad_files(tmp_path)[case]
    before = _status(index_copy)
    result = run_rag("ingest", str(path), env={"RAG_DATA_DIR": str(index_copy)})
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert _status(index_copy) == before
    search = run_rag("search", "reinforcement learning", "-k", "1", "--json",
                     env={"RAG_DATA_DIR": str(index_copy)})
    assert search.returncode == 0 and json.loads(search.stdout)["hits"]


def test_oversized_page_is_rejected_with_its_size(index_copy, tmp_path):
    big = tmp_path / "huge.txt"
    big.write_text(("A title line\n\n" + "word " * 400 + "\n\n") * 600)  # about 1.5 MB
    result = run_rag("ingest", str(big), env={"RAG_DATA_DIR": str(index_copy), "RAG_MAX_FILE_MB": "1"})
    assert result.returncode != 0 and "too large" in result.stderr


def test_truncated_and_mixed_input_keeps_the_good_records(tmp_path):
    records = synthetic_papers(3)
    good = write_jsonl(tmp_path / "cut.jsonl", records)
    good.write_text(good.read_text() + '{"title": "cut off", "abstract": "this line never en')
    (tmp_path / "empty.txt").write_text("")
    report = ingest([tmp_path], Settings(data_dir=tmp_path / "d"))
    assert report.added == 3
    reasons = {(r.source.rsplit("/", 1)[-1], r.reason.split(" ")[0]) for r in report.rejected}
    assert ("empty.txt", "empty") in reasons
    assert any(name == "cut.jsonl" for name, _ in reasons), report.rejected


def test_unusable_data_dir_is_one_line(tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("I am a file")
    result = run_rag("search", "anything", env={"RAG_DATA_DIR": str(not_a_dir / "sub")})
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = run_rag("ingest", str(SEEDS), env={"RAG_DATA_DIR": str(not_a_dir / "sub")})
    assert result.returncode != 0 and "Traceback" not in result.stderr


def test_search_on_a_missing_data_dir_says_so_and_creates_nothing(tmp_path):
    missing = tmp_path / "never-ingested"
    result = run_rag("search", "anything", env={"RAG_DATA_DIR": str(missing)})
    assert result.returncode != 0 and "no index in" in result.stderr and "rag ingest" in result.stderr
    assert not missing.exists()


def test_collection_name_chroma_refuses_fails_before_any_work(tmp_path):
    data = tmp_path / "d"
    result = run_rag("ingest", str(SEEDS), "--collection", "my papers!", env={"RAG_DATA_DIR": str(data)})
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "bad setting collection: use 3-200 letters, digits" in result.stderr
    assert not data.exists()


@pytest.mark.parametrize("name, expected", [
    ("chroma", "data dir's own files"), ("Models", "data dir's own files"), ("lock", "data dir's own files"),
    ("papers-rebuild", "kept for `rag ingest --rebuild`"), ("a" * 201, "3-200 letters"), ("x..y", "3-200"),
])
def test_collection_names_that_would_clash_are_refused(name, expected):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=re.escape(expected)):
        Settings(collection=name)
    Settings(collection="a" * 200)
