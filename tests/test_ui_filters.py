"""The UI's filters and Cite button, without a browser: the year fields, what reaches retrieval,
what the page says when the filters keep out everything, and the references of the cited papers.
The browser test in test_ui_browser.py drives the same through Chromium."""
from __future__ import annotations

import html

import gradio as gr
import pytest

from rag.retrieval import Filters
from rag.settings import Settings

BONE = "What does Bone (Block Affine) emphasize?"  # answered from one 2024 seed paper, citing [1]
BONE_TITLE = "Bone: Block Affine Transformation as Parameter Efficient Fine-tuning Methods for Large Language Models"


@pytest.mark.parametrize("typed", ["20x1", "21", "2021.5", "-2021", "20 21", "0999", "２０２１", "1" * 40])
def test_a_year_field_that_is_not_a_year_says_so(typed):
    from rag.errors import QueryError
    from rag.ui import parse_filters

    with pytest.raises(QueryError, match=r'filter "until": ".{1,21}" is not a year; type four digits') as e:
        parse_filters("", typed, "", "")
    assert len(str(e.value)) < 150, "a long entry is cut in the message"


def test_filter_fields_become_the_filters_the_cli_builds():
    from rag.cli import _filters
    from rag.errors import QueryError
    from rag.ui import parse_filters

    for empty in ("", "  ", None):
        assert parse_filters(empty, empty, empty, empty) is None
    assert parse_filters(" 2020 ", "2024", "  Hu ", "") == _filters(2020, 2024, "Hu", None) == \
        Filters(2020, 2024, "Hu", None)
    assert parse_filters("", "", "", "ICLR") == Filters(venue="ICLR")
    assert parse_filters("2021", "2021", "", "") == Filters(2021, 2021)
    with pytest.raises(QueryError, match='since 2025 is after until 2020'):
        parse_filters("2025", "2020", "", "")


def test_the_filters_accordion_names_what_is_on_and_the_error_when_a_year_is_bad():
    from rag.ui import FILTERS_HINT, filters_summary

    label, note = filters_summary("", "", "", "")
    assert label["label"] == "Filters" and FILTERS_HINT in note
    label, _ = filters_summary("2020", "", "<b>Hu</b>", "")
    assert label["label"] == 'Filters: since 2020, author contains "<b>Hu</b>"'  # Svelte shows a label as text
    label, note = filters_summary("20x1", "", "", "")
    assert "fix the error" in label["label"] and "rag-error" in note and "&quot;20x1&quot; is not a year" in note


def test_a_bad_year_is_a_message_in_chat_and_search_and_the_question_stays():
    from rag.ui import App

    app = App(Settings())  # no index: the filters are checked before anything is searched
    *_, (chat, sources, turns, box, answer) = list(app.chat(BONE, [], "extractive", "", "", "", "", 5,
                                                            since="20x1"))
    assert 'class="rag-error"' in chat[-1]["content"] and "is not a year" in html.unescape(chat[-1]["content"])
    assert box == BONE and turns[-1][1] == ""
    assert answer == gr.skip(), "nothing was asked: the answer before stays the one Cite lists"
    found = app.search("LoRA", "hybrid", 5, "2025", "2020", "", "")
    assert 'class="rag-error"' in found and "since 2025 is after until 2020" in found


def test_filters_reach_retrieval_from_chat_and_search(fake_seed_dir, monkeypatch):
    from rag.ui import App

    app = App(Settings(data_dir=fake_seed_dir))
    retriever = app.retriever()
    seen: list = []
    search = retriever.search
    monkeypatch.setattr(retriever, "search", lambda *a, **kw: seen.append(kw.get("filters")) or search(*a, **kw))

    *_, (_, sources, _, _, answer) = list(app.chat(BONE, [], "extractive", "", "", "", "", 5, since="2024"))
    assert seen == [Filters(since=2024)]
    assert answer.sources and all(s.date >= "2024" for s in answer.sources)
    assert "Filters: since 2024" in sources
    *_, (_, _, _, _, unfiltered) = list(app.chat(BONE, [], "extractive", "", "", "", "", 5))
    assert seen[-1] is None and any((s.date or "0") < "2024" for s in unfiltered.sources)

    hits = app.search("Block Affine", "hybrid", 5, "", "2023", "", " no such venue ")
    assert seen[-1] == Filters(until=2023, venue="no such venue")
    assert "No paper that matches the filters" in hits and "venue contains &quot;no such venue&quot;" in hits


def test_filters_that_keep_out_every_paper_say_so_not_that_the_collection_lacks_it(fake_seed_dir):
    from rag.prompts import load
    from rag.ui import NO_MATCH, App

    app = App(Settings(data_dir=fake_seed_dir))
    *_, (chat, sources, _, _, answer) = list(app.chat(BONE, [], "extractive", "", "", "", "", 5, since="2090",
                                                      author="<img src=x>"))
    assert answer.refused and answer.sources == []
    shown = chat[-1]["content"]
    assert NO_MATCH in shown and "since 2090" in shown and load("refusal").text not in shown
    assert "<img" not in shown + sources and "&lt;img src=x&gt;" in shown
    assert NO_MATCH in sources and "Sources appear here" not in sources


def test_cite_lists_only_the_cited_papers_as_the_cli_does(fake_seed_dir, tmp_path, monkeypatch):
    import tempfile

    from rag.cite import CITE_FORMATS, CITE_SUFFIXES, cited_sources, references
    from rag.ui import App

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the files to download land here, not in /tmp

    assert set(CITE_SUFFIXES) == set(CITE_FORMATS), "every cite format has its file suffix"
    app = App(Settings(data_dir=fake_seed_dir))
    *_, (_, _, _, _, answer) = list(app.chat(BONE, [], "extractive", "", "", "", "", 5))
    assert [s.n for s in cited_sources(answer)] == [1] and len(answer.sources) > 1
    for fmt in CITE_FORMATS:
        note, code, file = app.cite(answer, fmt)
        assert code["visible"] and code["value"] == references(cited_sources(answer), fmt)
        assert BONE_TITLE in code["value"] and answer.sources[1].title not in code["value"]
        assert file["value"].endswith(f"references{CITE_SUFFIXES[fmt]}") and file["visible"]
        assert file["value"].startswith(str(tmp_path))
        with open(file["value"], encoding="utf-8") as saved:
            assert saved.read() == code["value"]
        assert f"1 cited paper as {fmt}" in note
    assert "title = {" + BONE_TITLE + "}" in app.cite(answer, "bibtex")[1]["value"]


def test_cite_after_a_refusal_or_before_any_answer_has_nothing_to_list(fake_seed_dir):
    from rag.ui import App

    app = App(Settings(data_dir=fake_seed_dir))
    *_, (_, _, _, _, refused) = list(app.chat("What is the best recipe for sourdough bread?", [], "extractive",
                                              "", "", "", "", 5))
    assert refused.refused and refused.sources, "a refusal still lists the nearest papers"
    for answer, said in ((refused, "Nothing to cite: the answer was a refusal"), (None, "No answer to cite yet")):
        note, code, file = app.cite(answer, "bibtex")
        assert said in note and code["visible"] is False and file["visible"] is False
    assert "rag-error" in app.cite(refused, "endnote")[0]
