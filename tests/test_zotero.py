"""rag.sources.zotero: a Zotero library read straight from zotero.sqlite (no models, no ingest).

The fixture library is built (once a module, then copied for each test) from Zotero's real schema,
copied byte-exact into tests/fixtures/zotero/ (SOURCES.md there has repository, commit and license):
`system.sql`, `userdata.sql` and `triggers.sql` from zotero/zotero `resource/schema/` at commit
e9bcf6f1, and `schema.json` (item types, fields, creator types) from zotero/zotero-schema at
5eedf440, the commit that Zotero commit pins as its `resource/schema/global` submodule. `zotero_db` follows
`Zotero.Schema._initializeSchema()` and `_updateGlobalSchema()` (chrome/content/zotero/xpcom/schema.js),
and `add_item` the INSERTs of `Zotero.Item._saveData()` (xpcom/data/item.js), `Zotero.Creators` and
`Zotero.Tags`, with ids handed out as `Zotero.ID.get()` does (MAX(id) + 1).

The papers are real: DPR's abstract from huggingface/transformers docs/source/en/model_doc/dpr.md,
REALM's from .../realm.md, GPT-4's from its NASA ADS record (2023arXiv230308774O), the HIFU article
from tests/fixtures/sources/pubmed_medline_biopython_result3.nbib and the two IBD articles from
tests/fixtures/sources/ris_zotero_asreview_pubmed_zotero_first3.ris (Zotero's own RIS export). The
abstracts of the trashed and the feed item are cut to their first sentences: they must not be read.
"""
from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from rag.sources.parsed import Rejected, _Rec
from rag.sources.zotero import _date, parse

SCHEMA = Path(__file__).parent / "fixtures" / "zotero"
NOW = "2026-11-30 09:12:44"

DPR = {
    "title": "Dense Passage Retrieval for Open-Domain Question Answering",
    "abstractNote": "Open-domain question answering relies on efficient passage retrieval to select candidate "
    "contexts, where traditional sparse vector space models, such as TF-IDF or BM25, are the de facto method. In "
    "this work, we show that retrieval can be practically implemented using dense representations alone, where "
    "embeddings are learned from a small number of questions and passages by a simple dual-encoder framework. When "
    "evaluated on a wide range of open-domain QA datasets, our dense retriever outperforms a strong Lucene-BM25 "
    "system largely by 9%-19% absolute in terms of top-20 passage retrieval accuracy, and helps our end-to-end QA "
    "system establish new state-of-the-art on multiple open-domain QA benchmarks.",
    "date": "2020-11-00 November 2020",
    "proceedingsTitle": "Proceedings of the 2020 Conference on Empirical Methods in Natural Language Processing "
    "(EMNLP)",
    "publisher": "Association for Computational Linguistics",
    "place": "Online",
    "DOI": "10.18653/v1/2020.emnlp-main.550",
    "url": "https://aclanthology.org/2020.emnlp-main.550",
}
DPR_AUTHORS = ["Vladimir Karpukhin", "Barlas Oğuz", "Sewon Min", "Patrick Lewis", "Ledell Wu", "Sergey Edunov",
               "Danqi Chen", "Wen-tau Yih"]
GPT4 = {
    "title": "GPT-4 Technical Report",
    "abstractNote": "We report the development of GPT-4, a large-scale, multimodal model which can accept image and "
    "text inputs and produce text outputs. While less capable than humans in many real-world scenarios, GPT-4 "
    "exhibits human-level performance on various professional and academic benchmarks, including passing a "
    "simulated bar exam with a score around the top 10% of test takers. GPT-4 is a Transformer-based model "
    "pre-trained to predict the next token in a document. The post-training alignment process results in improved "
    "performance on measures of factuality and adherence to desired behavior. A core component of this project was "
    "developing infrastructure and optimization methods that behave predictably across a wide range of scales. This "
    "allowed us to accurately predict some aspects of GPT-4's performance based on models trained with no more than "
    "1/1,000th the compute of GPT-4.",
    "date": "2023-03-27 2023-03-27",
    "repository": "arXiv",
    "archiveID": "arXiv:2303.08774",
    "DOI": "10.48550/arXiv.2303.08774",
    "url": "http://arxiv.org/abs/2303.08774",
    "accessDate": "2023-05-01 20:53:00",
    "extra": "arXiv:2303.08774 [cs]",
}
HIFU = {
    "title": "Effects of different parameters in the fast scanning method for HIFU treatment",
    "abstractNote": "PURPOSE: High-intensity focused ultrasound is a promising method for the noninvasive treatment of "
    "benign and malignant tumors. This study analyzes the effects of scanning path, applied power, and geometric "
    "characteristics of the transducer on ablation using fast scanning method, a new scanning method that uses "
    "high-intensity focused ultrasound at different blood perfusion levels. METHODS: Two transducers, six scanning "
    "paths, and three focal patterns were used to examine the ablation results of the fast scanning method using "
    "power densities from 1.35 x 10(7) Wm(3) to 4.5 x 10(7) Wm(3) and blood perfusion rates from 2 x 10(-3) mlmls "
    "to 16 x 10(-3) mlmls. The Pennes equation was solved using the finite-difference time-domain method to "
    "simulate the heating procedure. RESULTS: Based on the results of the fast-scanning method, the different "
    "scanning paths exhibited small effect on the total treatment time supported by both simulation and "
    "least-square fit. Similar-sized lesions can result from the five different repeated paths, whereas a random "
    "path may lead to relative large fluctuations in ablation volume because of asymmetry of the lesions. Higher "
    "power levels increase the lesion volume and decrease the treatment time required for ablating a target area "
    "using the fast scanning method, whereas increased blood perfusion has the opposite effect on ablation volume "
    "and treatment time. A symmetric lesion can be produced through fast scanning method using a 65-element and a "
    "90-element transducer. However, lesion production using the same operation scheme differs between the two "
    "transducers. CONCLUSIONS: Unlike traditional scanning methods, fast scanning method produces a planned lesion "
    "regardless of scanning path, as long as the path consists of repeated subsequences. This attribute makes fast "
    "scanning method an easy-operation scheme that produces relatively large symmetric lesions in homogeneous "
    "tissues. Applied power is the most important factor; however, high blood perfusion levels can limit or even "
    "hinder the full ablation of the target area. Therefore, tissue perfusion and transducer type should be given "
    "special attention to ensure the success and safety of ablation treatment.",
    "date": "2012-10-00 2012 Oct",
    "publicationTitle": "Medical physics",
    "journalAbbreviation": "Med Phys",
    "volume": "39",
    "issue": "10",
    "pages": "5795-5813",
    "ISSN": "0094-2405",
    "DOI": "10.1118/1.4748329",
    "language": "eng",
    "extra": "PMID: 23039619",
}
RUDNIK = {  # its abstract was never fetched
    "title": "The importance of cognitive flexibility and flexibility in coping with stress for the quality of "
    "life in inflammatory bowel disease patients during biological therapy. A preliminary report.",
    "date": "2019-00-00 2019",
    "publicationTitle": "Przeglad gastroenterologiczny",
    "volume": "14",
    "issue": "2",
    "pages": "121-128",
    "DOI": "10.5114/pg.2018.81081",
}
HICKS = {  # in the trash
    "title": "Outcomes of inflammatory bowel disease surgery in obese versus non-obese patients: a meta-analysis.",
    "abstractNote": "BACKGROUND: Obesity is considered a risk factor for many chronic diseases and obese patients are "
    "often considered higher risk surgical candidates. The aim of this meta-analysis was to evaluate the outcomes of "
    "obese (body mass index >/= 30 kg/m(2)) versus non-obese patients undergoing surgery for inflammatory bowel "
    "disease (IBD).",
    "date": "2019-10-00 2019-10",
    "publicationTitle": "Techniques in coloproctology",
    "DOI": "10.1007/s10151-019-02080-0",
}
REALM = {  # an item of an RSS feed the user follows, not of their library
    "title": "REALM: Retrieval-Augmented Language Model Pre-Training",
    "abstractNote": "Language model pre-training has been shown to capture a surprising amount of world knowledge, "
    "crucial for NLP tasks such as question answering. However, this knowledge is stored implicitly in the "
    "parameters of a neural network, requiring ever-larger networks to cover more facts.",
    "date": "2020-02-10 2020-02-10",
    "url": "http://arxiv.org/abs/2002.08909",
}


# --- a Zotero database, as Zotero makes one ---------------------------------------------------------------------
def _next_id(con: sqlite3.Connection, table: str, column: str) -> int:
    return con.execute(f"SELECT COALESCE(MAX({column}) + 1, 1) FROM {table}").fetchone()[0]  # Zotero.ID.get()


def _id_of(con: sqlite3.Connection, sql: str, *args: object) -> int:
    row = con.execute(sql, args).fetchone()
    assert row, (sql, args)
    return row[0]


def zotero_db(path: Path) -> sqlite3.Connection:
    """A new, empty zotero.sqlite: Zotero's schema files, the global schema, the user library."""
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA foreign_keys = true")   # as Zotero.DBConnection opens every database
    con.execute("PRAGMA page_size = 4096")
    con.execute("PRAGMA encoding = 'UTF-8'")
    sql = {name: (SCHEMA / f"{name}.sql").read_text(encoding="utf-8") for name in ("system", "userdata", "triggers")}
    schema = json.loads((SCHEMA / "schema.json").read_text(encoding="utf-8"))
    types = schema["itemTypes"]
    with con:  # one transaction, as _initializeSchema() runs
        con.executescript("BEGIN;\n" + "\n".join(sql.values()))
        # _updateGlobalSchema(): fields and creator types numbered in the order schema.json first names them
        for name in dict.fromkeys(n for t in types for f in t["fields"] for n in (f["field"], f.get("baseField")) if n):
            con.execute("INSERT INTO fields VALUES (?, ?, NULL)", (_next_id(con, "fields", "fieldID"), name))
        for name in dict.fromkeys(c["creatorType"] for t in types for c in t["creatorTypes"]):
            con.execute("INSERT INTO creatorTypes VALUES (?, ?)",
                        (_next_id(con, "creatorTypes", "creatorTypeID"), name))
        field = dict(con.execute("SELECT fieldName, fieldID FROM fields"))
        creator = dict(con.execute("SELECT creatorType, creatorTypeID FROM creatorTypes"))
        for t in types:
            type_id = _next_id(con, "itemTypes", "itemTypeID")
            con.execute("INSERT INTO itemTypes VALUES (?, ?, NULL, 1)", (type_id, t["itemType"]))
            for index, f in enumerate(t["fields"]):
                con.execute("INSERT INTO itemTypeFields VALUES (?, ?, 0, ?)", (type_id, field[f["field"]], index))
                if f.get("baseField"):
                    con.execute("INSERT INTO baseFieldMappings VALUES (?, ?, ?)",
                                (type_id, field[f["baseField"]], field[f["field"]]))
            for c in t["creatorTypes"]:
                con.execute("INSERT INTO itemTypeCreatorTypes VALUES (?, ?, ?)",
                            (type_id, creator[c["creatorType"]], 1 if c.get("primary") else 0))
        versions = {name: int(text.split(maxsplit=2)[1]) for name, text in sql.items()}  # each file opens "-- 123"
        for name, version in {**versions, "globalSchema": schema["version"]}.items():
            con.execute("REPLACE INTO version (schema, version) VALUES (?, ?)", (name, version))
        con.execute("INSERT INTO libraries (libraryID, type, editable, filesEditable) VALUES (1, 'user', 1, 1)")
        # _updateCustomTables() at startup: the built-in types and fields plus (here no) custom ones
        for combined, columns, table in [
                ("itemTypesCombined", "itemTypeID, typeName, display, 0", "itemTypes"),
                ("fieldsCombined", "fieldID, fieldName, NULL, fieldFormatID, 0", "fields"),
                ("itemTypeFieldsCombined", "itemTypeID, fieldID, hide, orderIndex", "itemTypeFields"),
                ("baseFieldMappingsCombined", "itemTypeID, baseFieldID, fieldID", "baseFieldMappings")]:
            con.execute(f"INSERT INTO {combined} SELECT {columns} FROM {table}")
    return con


def add_item(con: sqlite3.Connection, key: str, item_type: str, fields: dict[str, str] | None = None,
             authors: list[str] = (), tags: list[tuple[str, int]] = (), library: int = 1) -> int:
    """One item as Zotero.Item._saveData() writes it. An author "Given Family" is a two-field name; a
    one-word author ("OpenAI") a one-field name (fieldMode 1), as Zotero's importers store them."""
    type_id = _id_of(con, "SELECT itemTypeID FROM itemTypes WHERE typeName = ?", item_type)
    item_id = _next_id(con, "items", "itemID")
    con.execute("INSERT INTO items (itemID, libraryID, key, clientDateModified, itemTypeID, dateAdded, dateModified) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)", (item_id, library, key, NOW, type_id, NOW, NOW))
    for name, value in (fields or {}).items():
        field_id = _id_of(con, "SELECT fieldID FROM itemTypeFields JOIN fields USING (fieldID) "
                               "WHERE itemTypeID = ? AND fieldName = ?", type_id, name)  # valid for this type
        row = con.execute("SELECT valueID FROM itemDataValues WHERE value = ?", (value,)).fetchone()
        value_id = row[0] if row else _next_id(con, "itemDataValues", "valueID")
        if not row:
            con.execute("INSERT INTO itemDataValues VALUES (?, ?)", (value_id, value))
        con.execute("REPLACE INTO itemData VALUES (?, ?, ?)", (item_id, field_id, value_id))
    author = _id_of(con, "SELECT creatorTypeID FROM creatorTypes WHERE creatorType = 'author'")
    for index, name in enumerate(authors):
        first, _, last = name.rpartition(" ")
        data = (first, last, 0 if first else 1)
        row = con.execute("SELECT creatorID FROM creators WHERE firstName = ? AND lastName = ? AND fieldMode = ?",
                          data).fetchone()
        creator_id = row[0] if row else _next_id(con, "creators", "creatorID")
        if not row:
            con.execute("INSERT INTO creators (creatorID, firstName, lastName, fieldMode) VALUES (?, ?, ?, ?)",
                        (creator_id, *data))
        con.execute("INSERT OR REPLACE INTO itemCreators (itemID, creatorID, creatorTypeID, orderIndex) "
                    "VALUES (?, ?, ?, ?)", (item_id, creator_id, author, index))
    for name, kind in tags:  # kind 0: added by the user, 1: automatic (from the importer)
        row = con.execute("SELECT tagID FROM tags WHERE name = ?", (name,)).fetchone()
        tag_id = row[0] if row else _next_id(con, "tags", "tagID")
        if not row:
            con.execute("INSERT INTO tags (tagID, name) VALUES (?, ?)", (tag_id, name))
        con.execute("INSERT OR REPLACE INTO itemTags (itemID, tagID, type) VALUES (?, ?, ?)", (item_id, tag_id, kind))
    return item_id


def library(path: Path) -> Path:
    """A small real-looking library: three papers with abstracts, one without, one in the trash, a PDF
    with an annotation, a note, and an RSS feed with one item."""
    con = zotero_db(path)
    with con:
        con.execute("BEGIN")
        dpr = add_item(con, "K7QXN2TB", "conferencePaper", DPR, DPR_AUTHORS,
                       [("dense retrieval", 0), ("open-domain QA", 0)])
        pdf = add_item(con, "W4ZJ8M3C", "attachment", {
            "title": "Full Text PDF", "url": "https://aclanthology.org/2020.emnlp-main.550.pdf",
            "accessDate": "2026-11-30 09:12:50"})
        con.execute("INSERT INTO itemAttachments (itemID, parentItemID, linkMode, contentType, charsetID, path, "
                    "syncState, storageModTime, storageHash, lastProcessedModificationTime) "
                    "VALUES (?, ?, 1, 'application/pdf', NULL, ?, 0, NULL, NULL, NULL)",
                    (pdf, dpr, "storage:Karpukhin et al. - 2020 - Dense Passage Retrieval for Open-Domain.pdf"))
        highlight = add_item(con, "C2R9VHXA", "annotation")
        con.execute("REPLACE INTO itemAnnotations (itemID, parentItemID, type, authorName, text, comment, color, "
                    "pageLabel, sortIndex, position, isExternal) VALUES (?, ?, 1, NULL, ?, NULL, '#ffd400', "
                    "'6769', '00000|000412|00318', ?, 0)", (highlight, pdf, "a simple dual-encoder framework",
                                                          '{"pageIndex":0,"rects":[[307.3,233.9,521.2,245.8]]}'))
        gpt4 = add_item(con, "I3LPNPZV", "preprint", GPT4, ["OpenAI"], [
            ("Computer Science - Artificial Intelligence", 1), ("Computer Science - Computation and Language", 1)])
        note = add_item(con, "FW27LPAE", "note")
        con.execute("INSERT INTO itemNotes (itemID, parentItemID, note, title) VALUES (?, ?, ?, ?)",
                    (note, gpt4, '<div class="zotero-note znv1"><p>Comment: 100 pages</p></div>', "Comment: 100 pages"))
        add_item(con, "9DEXU5RQ", "journalArticle", HIFU, ["Shan Qiao", "Guofeng Shen", "Jingfeng Bai", "Yazhu Chen"],
                 [("Humans", 1), ("Sonication", 1), ("Transducers", 1)])
        add_item(con, "PB6M2H8S", "journalArticle", RUDNIK,
                 ["Agata Rudnik", "Grazyna Piotrowicz", "Malgorzata A. Basinska", "Vahid Rashedi"])
        trashed = add_item(con, "T5GV7N4K", "journalArticle", HICKS, ["G. Hicks", "A. Abdulaal", "A. A. P. Slesser",
                                                                         "Y. Mohsen"])
        con.execute("REPLACE INTO deletedItems (itemID) VALUES (?)", (trashed,))
        con.execute("INSERT INTO libraries (libraryID, type, editable, filesEditable) VALUES (2, 'feed', 0, 0)")
        con.execute("INSERT INTO feeds (name, url, libraryID) VALUES (?, ?, 2)",
                    ("cs.CL updates on arXiv.org", "https://rss.arxiv.org/rss/cs.CL"))
        feed_item = add_item(con, "Q8HS3JDW", "preprint", REALM,
                             ["Kelvin Guu", "Kenton Lee", "Zora Tung", "Panupong Pasupat", "Ming-Wei Chang"], library=2)
        con.execute("REPLACE INTO feedItems VALUES (?, ?, NULL, NULL)", (feed_item, "oai:arXiv.org:2002.08909v1"))
    con.close()
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return library(tmp_path_factory.mktemp("built") / "zotero.sqlite")


@pytest.fixture
def db(built: Path, tmp_path: Path) -> Path:
    """A fresh copy for each test (some change or cut it)."""
    (tmp_path / "Zotero").mkdir()
    return Path(shutil.copy(built, tmp_path / "Zotero" / "zotero.sqlite"))


def records(path: Path) -> tuple[dict[str, _Rec], list[Rejected]]:
    out = list(parse(str(path), path))
    return {r.title: r for r in out if isinstance(r, _Rec)}, [r for r in out if isinstance(r, Rejected)]


# --- tests ------------------------------------------------------------------------------------------------------
def test_items_with_abstracts_become_records_with_their_metadata(db: Path) -> None:
    recs, _ = records(db)
    dpr, gpt4, hifu = recs[DPR["title"]], recs[GPT4["title"]], recs[HIFU["title"]]
    assert (dpr.abstract, dpr.date, dpr.authors, dpr.where) == (DPR["abstractNote"], "2020-11", 8,
                                                                f"item K7QXN2TB ({DPR['title'][:60]})")
    assert dpr.meta == {"authors": DPR_AUTHORS, "year": 2020, "venue": DPR["proceedingsTitle"],
                        "doi": "10.18653/v1/2020.emnlp-main.550", "url": DPR["url"], "ids": {"zotero": "K7QXN2TB"},
                        "keywords": ["dense retrieval", "open-domain QA"]}
    assert (gpt4.date, gpt4.authors) == ("2023-03-27", 1)
    assert gpt4.meta == {"authors": ["OpenAI"], "year": 2023, "doi": "10.48550/arxiv.2303.08774",
                         "url": "http://arxiv.org/abs/2303.08774", "ids": {"zotero": "I3LPNPZV", "arxiv": "2303.08774"},
                         "keywords": ["Computer Science - Artificial Intelligence",
                                      "Computer Science - Computation and Language"]}
    assert (hifu.date, hifu.meta["venue"], hifu.meta["ids"], hifu.meta["keywords"]) == (
        "2012-10", "Medical physics", {"zotero": "9DEXU5RQ", "pmid": "23039619"},
        ["Humans", "Sonication", "Transducers"])
    assert hifu.meta["authors"] == ["Shan Qiao", "Guofeng Shen", "Jingfeng Bai", "Yazhu Chen"]
    assert {r.own_id for r in recs.values()} == {None} and {r.source for r in recs.values()} == {str(db)}


def test_trash_attachments_notes_annotations_and_feeds_are_not_papers(db: Path) -> None:
    recs, rejected = records(db)
    assert sorted(recs) == sorted([DPR["title"], GPT4["title"], HIFU["title"]])
    assert [r.location for r in rejected] == [f"item PB6M2H8S ({RUDNIK['title'][:60]})"]  # not one per skipped item
    with closing(sqlite3.connect(db)) as con:  # they are in the file: 9 items in all
        kinds = dict(con.execute("SELECT key, typeName FROM items JOIN itemTypes USING (itemTypeID)"))
    assert len(kinds) == 9
    assert {kinds[k] for k in ("W4ZJ8M3C", "C2R9VHXA", "FW27LPAE")} == {"attachment", "annotation", "note"}


def test_an_item_without_abstract_is_reported_once(db: Path) -> None:
    _, rejected = records(db)
    assert rejected == [Rejected(str(db), f"item PB6M2H8S ({RUDNIK['title'][:60]})", "no abstract")]


def test_reads_while_zotero_holds_its_exclusive_lock(db: Path) -> None:
    zotero = sqlite3.connect(db, isolation_level=None)
    try:
        zotero.execute("PRAGMA main.locking_mode=EXCLUSIVE")     # as Zotero.DBConnection opens it
        zotero.execute("REPLACE INTO settings VALUES ('client', 'lastVersion', '7.1')")  # keeps the lock from here on
        zotero.execute("BEGIN")                                  # and is in the middle of saving an edit
        zotero.execute("UPDATE itemDataValues SET value = 'edited, not saved' WHERE value = ?", (DPR["title"],))
        with pytest.raises(sqlite3.OperationalError, match="locked"), \
                closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0)) as reader:
            reader.execute("SELECT COUNT(*) FROM items")  # what an ordinary reader gets
        recs, rejected = records(db)
        assert sorted(recs) == sorted([DPR["title"], GPT4["title"], HIFU["title"]])  # the last saved state
        assert len(rejected) == 1
    finally:
        zotero.close()


def test_a_path_with_space_question_mark_and_hash(db: Path) -> None:
    path = db.parent.parent / "My Library #2?mode=rw" / "zotero.sqlite"
    path.parent.mkdir()
    db.rename(path)
    recs, rejected = records(path)
    assert len(recs) == 3 and len(rejected) == 1


@pytest.mark.parametrize("make, reason", [
    # Another program's SQLite file, e.g. Better BibTeX's better-bibtex.sqlite beside zotero.sqlite
    (lambda p: sqlite3.connect(p).executescript("CREATE TABLE \"better-bibtex\" (name TEXT PRIMARY KEY, data TEXT);"
                                                "INSERT INTO \"better-bibtex\" VALUES ('citekey', '{}');").close(),
     "not a Zotero library (no items/itemData tables)"),
    (lambda p: p.write_bytes(b"SQLite format 3\x00" + b"\xff" * 84), "damaged or unreadable SQLite database"),
    (lambda p: p.write_text("TY  - JOUR\nER  -\n"), "damaged or unreadable SQLite database (file is not a database)"),
])
def test_a_file_that_is_not_a_zotero_library_is_one_clear_reject(tmp_path: Path, make, reason: str) -> None:
    path = tmp_path / "other.sqlite"
    make(path)
    out = list(parse(str(path), path))
    assert len(out) == 1 and isinstance(out[0], Rejected) and out[0].location == "file", out
    assert reason in out[0].reason


@pytest.mark.parametrize("keep", [0.5, 0.8, 0.95])
def test_a_truncated_library_is_one_clear_reject(db: Path, keep: float) -> None:
    data = db.read_bytes()
    db.write_bytes(data[: int(len(data) * keep) // 4096 * 4096 + 1000])   # cut mid-page, as a copy that stopped
    out = list(parse(str(db), db))
    assert len(out) == 1 and isinstance(out[0], Rejected), out
    assert out[0].location == "file" and "damaged" in out[0].reason


def test_an_item_restored_from_the_trash_is_a_paper_again(db: Path) -> None:
    with closing(sqlite3.connect(db)) as con, con:
        con.execute("DELETE FROM deletedItems")
    recs, _ = records(db)
    assert sorted(recs) == sorted([DPR["title"], GPT4["title"], HIFU["title"], HICKS["title"]])


def test_a_value_that_is_not_utf8_costs_one_character_not_the_library(db: Path) -> None:
    with closing(sqlite3.connect(db)) as con, con:  # written by something other than Zotero
        con.execute("UPDATE itemDataValues SET value = CAST(X'4750542D3420546563686E6963616CA0' AS TEXT) "
                    "WHERE value = ?", (GPT4["title"],))
    recs, _ = records(db)
    assert "GPT-4 Technical\ufffd" in recs and len(recs) == 3


def test_names_come_from_the_base_tables_when_zotero_left_the_combined_ones_empty(db: Path) -> None:
    with closing(sqlite3.connect(db)) as con, con:
        for table in ("itemTypesCombined", "fieldsCombined", "baseFieldMappingsCombined"):
            con.execute(f"DELETE FROM {table}")
    recs, rejected = records(db)
    assert sorted(recs) == sorted([DPR["title"], GPT4["title"], HIFU["title"]]) and len(rejected) == 1
    assert recs[DPR["title"]].meta["venue"] == DPR["proceedingsTitle"]


@pytest.mark.parametrize("stored, iso", [
    ("2019-10-00 2019-10", "2019-10"), ("2019-10-05 October 5, 2019", "2019-10-05"), ("2019-00-00 2019", "2019"),
    ("0000-00-00 Spring term", None), ("2019-10-05", "2019-10-05"), ("", None), ("n.d.", None),
])
def test_zotero_multipart_dates(stored: str, iso: str | None) -> None:
    assert _date(stored) == iso


def test_ingesting_the_zotero_folder_reads_the_library_and_search_shows_its_names(db: Path) -> None:
    """What a user points rag at: the data folder (its PDFs under storage/ and the backup are not papers)."""
    from rag.ingestion import ingest
    from rag.retrieval import Retriever
    from rag.settings import Settings

    storage = db.parent / "storage" / "W4ZJ8M3C"
    storage.mkdir(parents=True)
    (storage / "Karpukhin et al. - 2020 - Dense Passage Retrieval.pdf").write_bytes(b"%PDF-1.7\n\0")
    shutil.copy(db, db.with_name("zotero.sqlite.bak"))
    settings = Settings(data_dir=db.parent.parent / "index")
    report = ingest([db.parent], settings)
    assert report.added == 3
    assert [(Path(r.source).name, r.reason) for r in report.rejected] == [
        ("zotero.sqlite", "no abstract"), ("zotero.sqlite.bak", "binary file")]
    [hit] = Retriever(settings).search("dual-encoder passage retrieval open-domain", k=1)
    assert (hit.title, hit.meta["authors"][0], hit.meta["year"]) == (DPR["title"], "Vladimir Karpukhin", 2020)
