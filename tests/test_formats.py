"""Reference-manager and database exports → papers. Every fixture is a real export or recorded API
response (tests/fixtures/sources/SOURCES.md says where from); none is rag's own output."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rag.sources import load

FIXTURES = Path(__file__).parent / "fixtures" / "sources"


# file, papers, rejected, a title the export holds (decoded), its date, its author count
@pytest.mark.parametrize("name, papers, rejected, title, date, authors", [
    # Zotero + Better BibTeX: {{Braced}} words and a LaTeX accent; two entries have no abstract.
    ("bibtex_betterbibtex_export_551.bib", 2, 2,
     "War's Enduring Effects on the Development of Egalitarian Motivations and In-Group Biases", "2014", 4),
    ("bibtex_mendeley_export_bbt_fixture_3recs.bib", 3, 0, "Fiction and morality", "2020", 2),
    ("bibtex_jabref_testjabref_3recs.bib", 3, 0, "256-Channel Neural Recording", "2009", None),
    ("ris_zotero_asreview_pubmed_zotero_first3.ris", 3, 0, "The importance of cognitive flexibility", "2019", 4),
    ("ris_endnote_asreview_pubmed_endnote_first3.ris", 3, 0, "Boswellia serrata", "2011", 3),
    # A JSON array: Zotero's CSL-JSON; two items have no abstract.
    ("csljson_obsidian_citation_plugin_library.json", 3, 2, "An overview of biomineralization processes", "2003", 1),
    # One OpenAlex work, its abstract stored as an inverted index.
    ("openalex_work_single_W2741809807.json", 1, 0, "The state of OA", "2018-02-13", 9),
    # Semantic Scholar: a batch response (one id was not found: null) and a search response {"data": [...]}.
    ("s2_graph_paper_batch_response_semanticscholar_py.json", 3, 1, "How Much Should We Trust Differences",
     "2001-10-01", 3),
    ("s2_graph_paper_search_response_first3.json", 3, 0, "Using DeepSpeed and Megatron", "2022-01-28", 20),
    # PubMed MEDLINE (continuation lines, FAU authors, "DP - 2006 Mar 1") and efetch XML.
    ("pubmed_medline_biopython_result2.nbib", 4, 0, "GenomeDiagram", "2006-03-01", 4),
    ("pubmed_medline_biopython_result3.nbib", 1, 0, "Effects of different parameters", "2012-10", 4),
    ("pubmed_efetch_biopython_pubmed2.xml", 2, 0, "Is cryopreservation a homogeneous process?", "2001-06", 8),
    ("pubmed_efetch_biopython_pubmed5_structured.xml", 1, 0, "Occupational pesticide exposure", "2018-02", 12),
    # Web of Science "savedrecs.txt", plain text and tab-delimited: never again one junk paper
    # titled "PT AU TI SO AB PY DI UT".
    ("wos_plaintext_rispy_example_wos.txt", 2, 0, "Interactions stabilizing the structure", "2004-06-08", 4),
    ("wos_tabdelimited_scientopy_first3.txt", 3, 0, "Development of a Wearable Cardiac Monitoring", "2016-04", 7),
])
def test_real_exports_become_papers_with_their_dates_and_authors(name, papers, rejected, title, date, authors):
    result = load([FIXTURES / name])
    assert (len(result.papers), len(result.rejected)) == (papers, rejected), result.rejected
    paper = next(p for p in result.papers if p.title.startswith(title))
    assert (paper.date, paper.authors) == (date, authors)
    assert len(paper.abstract) > 200 and "{" not in paper.title and "\\" not in paper.abstract
    assert all(r.reason for r in result.rejected)


def test_openalex_inverted_index_is_read_back_in_order():
    paper = load([FIXTURES / "openalex_work_single_W2741809807.json"]).papers[0]
    assert paper.abstract.startswith("Despite growing interest in Open Access (OA) to scholarly literature")


def test_format_is_found_by_content_when_the_suffix_says_txt(tmp_path):
    for name, papers in (("bibtex_mendeley_export_bbt_fixture_3recs.bib", 3),
                         ("ris_zotero_asreview_pubmed_zotero_first3.ris", 3),
                         ("pubmed_medline_biopython_result2.nbib", 4)):  # PubMed's "Save as text"
        renamed = tmp_path / (Path(name).stem + ".txt")
        shutil.copyfile(FIXTURES / name, renamed)
        assert len(load([renamed]).papers) == papers, name


def test_a_structured_pubmed_abstract_keeps_its_sections_under_their_labels():
    abstract = load([FIXTURES / "pubmed_efetch_biopython_pubmed5_structured.xml"]).papers[0].abstract
    labels = [abstract.index(f"{label}: ") for label in ("OBJECTIVES", "METHODS", "RESULTS", "CONCLUSIONS")]
    assert labels == sorted(labels) and labels[0] == 0
    assert "ORQ3=4.15" in abstract, "inline markup (<sub>) keeps its text"


def test_a_pretty_printed_json_paper_is_one_paper_not_a_line_error_each(tmp_path):
    import json

    one = json.loads((FIXTURES / "s2_graph_paper_search_response_first3.json").read_text())["data"][0]
    path = tmp_path / "paper.json"
    path.write_text(json.dumps(one, indent=2))
    result = load([path])
    assert len(result.papers) == 1 and result.rejected == []


@pytest.mark.parametrize("name, names, year, ident", [
    ("bibtex_betterbibtex_export_551.bib", "Chytilová, Julie", 2014, ("doi", "10.1177/0956797613493444")),
    ("ris_zotero_asreview_pubmed_zotero_first3.ris", "Rudnik, Agata", 2019, ("doi", "10.5114/pg.2018.81081")),
    ("csljson_obsidian_citation_plugin_library.json", "S. Weiner", 2003, ("doi", "10.2113/0540001")),
    ("openalex_work_single_W2741809807.json", "Heather Piwowar", 2018, ("ids", {"openalex": "W2741809807"})),
    ("pubmed_medline_biopython_result2.nbib", "Casbon, James A", 2006, ("ids", {"pmid": "16403221"})),
    ("s2_graph_paper_search_response_first3.json", None, 2022, ("ids", None)),
    ("wos_tabdelimited_scientopy_first3.txt", None, 2023, ("ids", None)),
])
def test_metadata_comes_through_from_every_format(name, names, year, ident):
    papers = load([FIXTURES / name]).papers
    meta = papers[0].meta
    assert meta["year"] == year and meta["authors"], meta
    if names:
        assert names in [n for p in papers for n in p.meta.get("authors", [])]
    key, value = ident
    if value is None:
        assert meta.get("doi") or meta.get("ids"), meta
    elif key == "ids":
        assert value.items() <= meta["ids"].items()
    else:
        assert any(p.meta.get(key) == value for p in papers)


def test_search_json_and_text_show_names_year_and_identifier(tmp_path):
    from conftest import run_rag, write_jsonl

    from rag.ingestion import ingest
    from rag.settings import Settings

    settings = Settings(data_dir=tmp_path / "d")
    bib = FIXTURES / "bibtex_betterbibtex_export_551.bib"
    war = next(p for p in load([bib]).papers if p.title.startswith("War's"))
    # First without metadata (a JSONL of title + abstract), then the BibTeX: same paper, no re-embedding.
    ingest([write_jsonl(tmp_path / "plain.jsonl", [{"title": war.title, "abstract": war.abstract}])], settings)
    report = ingest([bib], settings)
    assert report.unchanged == 1 and report.added == 1
    env = {"RAG_DATA_DIR": str(settings.data_dir)}
    found = run_rag("search", "war egalitarian motivations in-group children", "-k", "1", "--json", env=env)
    import json

    hit = json.loads(found.stdout)["hits"][0]
    assert hit["meta"]["authors"][:2] == ["Bauer, Michal", "Cassar, Alessandra"]
    assert (hit["meta"]["year"], hit["meta"]["doi"]) == (2014, "10.1177/0956797613493444")
    text = run_rag("search", "war egalitarian motivations in-group children", "-k", "1", env=env).stdout
    assert "Bauer et al. 2014 · Psychological Science · doi:10.1177/0956797613493444" in text


def test_filters_by_year_author_and_venue_apply_to_search_and_ask(tmp_path):
    import json

    from conftest import run_rag

    from rag.answer import Asker
    from rag.ingestion import ingest
    from rag.retrieval import Filters, Retriever
    from rag.settings import Settings

    settings = Settings(data_dir=tmp_path / "d")
    names = ("bibtex_betterbibtex_export_551.bib", "ris_zotero_asreview_pubmed_zotero_first3.ris",
             "pubmed_medline_biopython_result2.nbib")
    ingest([FIXTURES / name for name in names], settings)
    retriever = Retriever(settings)
    query = "study of effects in people and software"
    everything = retriever.search(query, k=20, mode="bm25")
    years = {h.paper_id: h.meta["year"] for h in everything}
    assert min(years.values()) < 2010 < max(years.values())
    recent = retriever.search(query, k=20, mode="bm25", filters=Filters(since=2010))
    assert [h.paper_id for h in recent] == [pid for pid, y in years.items() if y >= 2010], "same order, none lost"
    assert all(h.meta["year"] >= 2010 for h in retriever.search(query, k=20, filters=Filters(since=2010)))
    assert all(h.meta["year"] <= 2006 for h in retriever.search(query, k=20, filters=Filters(until=2006)))
    assert [h.meta["authors"][0] for h in retriever.search(query, k=20, filters=Filters(author="bauer"))] \
        == ["Bauer, Michal"]
    venue = retriever.search(query, k=20, filters=Filters(venue="bioinformatics"))
    assert venue and all("bioinformatics" in h.meta["venue"].lower() for h in venue)
    answer = Asker(settings).ask("What did war exposure do to egalitarian motivations?", filters=Filters(until=2000))
    assert all(s.meta.get("year", 0) <= 2000 for s in answer.sources)

    env = {"RAG_DATA_DIR": str(settings.data_dir)}
    found = run_rag("search", query, "-k", "20", "--since", "2019", "--json", env=env)
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)["hits"]
    assert hits and all(h["meta"]["year"] >= 2019 for h in hits)


@pytest.mark.parametrize("fmt", ["bibtex", "ris", "csl-json"])
def test_ask_cites_back_the_papers_it_cited_in_a_format_a_reference_manager_reads(tmp_path, fmt):
    import json

    from conftest import run_rag

    from rag.ingestion import ingest
    from rag.settings import Settings

    settings = Settings(data_dir=tmp_path / "d")
    ingest([FIXTURES / "bibtex_betterbibtex_export_551.bib"], settings)
    result = run_rag("ask", "What did exposure to war do to egalitarian motivations toward the in-group?",
                     "--cite", fmt, "--json", env={"RAG_DATA_DIR": str(settings.data_dir)})
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert not answer["refused"]
    text = answer["references"]
    # Read back with the same libraries rag reads exports with: what a reference manager would import.
    if fmt == "bibtex":
        import bibtexparser

        entry = bibtexparser.parse_string(text).entries[0]
        doi, title = entry.fields_dict["doi"].value, entry.fields_dict["title"].value
    elif fmt == "ris":
        import rispy

        entry = rispy.loads(text)[0]
        doi, title = entry["doi"], entry["title"]
    else:
        entry = json.loads(text)[0]
        doi, title = entry["DOI"], entry["title"]
        assert entry["author"][0] == {"family": "Bauer", "given": "Michal"}
    assert doi == "10.1177/0956797613493444" and title.startswith("War's Enduring Effects")
