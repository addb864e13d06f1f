"""The Gradio UI: fast tests of its HTML rendering and request handling, then end-to-end tests
that start `rag ui` on a copy of the seed index and drive Debian's Chromium with Playwright.

Screenshots land in artifacts/ui/ (gitignored); RAG_UPDATE_SCREENSHOT=1 also refreshes docs/ui.png.
"""
from __future__ import annotations

import html
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import FAKE_ENV, synthetic_papers, write_jsonl

from rag.answer import Answer, Source
from rag.errors import IndexBusy, IndexMissing, LLMError
from rag.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "ui"
ARTIFACTS = ROOT / "artifacts" / "ui"
CHROMIUM = Path("/usr/bin/chromium")
SEED_QUESTION = "What does LoRA-GA align at the first step?"
ABSTRACT = ("We introduce LoRA-GA, which aligns the gradients of the low-rank product with full fine-tuning at "
            "the first step. It converges faster than vanilla LoRA. Experiments cover T5 and Llama 2.")


def source(n: int, title: str = "LoRA-GA: Low-Rank Adaptation", abstract: str = ABSTRACT) -> Source:
    return Source(n, f"p{n}", title, abstract, "2024-07-06", 0.0328, 0.47, f"{title}\n{abstract}")


def answer(text: str, citations: list[dict] | None = None, **kw) -> Answer:
    return Answer("q", "q", text, [source(1), source(2, "Other paper", "Unrelated words here.")],
                  kw.pop("refused", False), "extractive", citations=citations or [], **kw)


# --- fast: pure rendering and request handling --------------------------------------------------
def test_citations_become_links_to_source_cards():
    from rag.ui import link_citations

    out = link_citations("A [1]. B [1, 3].", weak=[3])
    assert out.count('href="#src-1"') == 2
    assert '<a href="#src-3" class="cite weak"' in out


def test_answer_is_escaped_and_unsupported_sentences_marked():
    from rag.ui import render_answer

    verdicts = [{"sentence": "It aligns gradients <b>x</b>.", "cited": [1], "support": 0.9, "supported": True},
                {"sentence": "It cures colds.", "cited": [2], "support": 0.1, "supported": False}]
    out = render_answer(answer("It aligns gradients <b>x</b> [1]. It cures colds [2].", verdicts,
                               removed_citations=[7]), "Not covered.")
    assert "&lt;b&gt;" in out and "<b>x</b>" not in out
    assert out.count('<span class="unsupported"') == 1 and "1 sentence not clearly supported" in out
    assert '<a href="#src-2" class="cite weak"' in out and '<a href="#src-1" class="cite"' in out
    assert "Removed citation 7" in out


def test_refusal_and_error_wording():
    from rag.prompts import load
    from rag.ui import render_answer

    NOT_COVERED = load("refusal").text

    assert NOT_COVERED in render_answer(answer(NOT_COVERED, refused=True), NOT_COVERED)
    failed = render_answer(answer("", error="openai at http://x/v1: connection refused"), NOT_COVERED)
    # Entities keep text inert in the chat's markdown; the page shows them as the characters.
    assert "⚠ Error: openai at http://x/v1: connection refused" in html.unescape(failed) and "sources found" in failed


def test_source_cards_highlight_the_cited_sentence():
    from rag.ui import render_sources

    cited = [{"sentence": "LoRA-GA aligns the gradients with full fine-tuning at the first step.", "cited": [1],
              "support": 1.0, "supported": True}]
    out = render_sources([source(1), source(2, "Other <paper>", "Unrelated words here.")], cited)
    assert 'id="src-1"' in out and 'id="src-2"' in out and "Other &lt;paper&gt;" in out
    assert "<mark>We introduce LoRA-GA, which aligns the gradients" in out
    assert out.count("<mark>") == 2  # snippet and full abstract, one sentence each
    assert "<details><summary>Full abstract</summary>" in out
    assert "Nearest papers" in render_sources([source(1)], refused=True)


def test_example_questions_from_titles():
    from rag.ui import example_question

    assert example_question("LoRA-GA: Low-Rank Adaptation with Gradient Approximation") == \
        "What does LoRA-GA propose?"
    assert example_question("Data Shapley") == "What is “Data Shapley” about?"
    assert example_question("x" * 200) is None


def test_request_settings_never_send_the_server_key_elsewhere():
    from rag.ui import App

    app = App(Settings(openai_api_key="sk-server", openai_base_url="https://api.example.com/v1"))
    same = app.request_settings("openai", "m", "https://api.example.com/v1/", "", "", 3)
    assert same.openai_api_key.get_secret_value() == "sk-server" and same.top_k == 3
    elsewhere = app.request_settings("openai", "m", "http://attacker.example/v1", "", "", 5)
    assert elsewhere.openai_api_key is None
    own = app.request_settings("openai", "m", "http://mine.example/v1", "", " sk-mine ", 5)
    assert own.openai_api_key.get_secret_value() == "sk-mine"
    assert app.settings.openai_api_key.get_secret_value() == "sk-server"  # the base settings are untouched
    with pytest.raises(Exception, match="unknown backend"):
        app.request_settings("gpt", "", "", "", "", 5)


def test_locked_backend_ignores_what_the_page_sends():
    from rag.ui import App, build, is_loopback

    server = Settings(llm="openai", llm_model="served", openai_base_url="http://llm.internal/v1",
                      openai_api_key="sk-server")
    app = App(server, lock_llm=True)
    got = app.request_settings("ollama", "other", "http://169.254.169.254/v1", "http://attacker:11434", "sk-x", 3)
    assert (got.llm, got.llm_model, got.openai_base_url, got.ollama_host) == (
        "openai", "served", "http://llm.internal/v1", "http://127.0.0.1:11434")
    assert got.openai_api_key.get_secret_value() == "sk-server" and got.top_k == 3
    # The page shows the fields read-only and hides the URLs and key.
    def fields(lock: bool) -> dict:
        return {c.elem_id: c for c in build(server, lock_llm=lock).blocks.values() if getattr(c, "elem_id", None)}

    locked, unlocked = fields(True), fields(False)
    assert not locked["backend"].interactive and not locked["model"].interactive
    assert not locked["base-url"].visible and not locked["api-key"].visible and "llm-locked" in locked
    assert unlocked["base-url"].visible and unlocked["api-key"].visible and "llm-locked" not in unlocked
    assert [is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "192.168.1.5", "myhost")] == [
        True, True, True, False, False, False]


def test_busy_port_and_bad_host_fail_in_one_line_before_gradio_starts():
    from rag.errors import ConfigError
    from rag.ui import check_listen

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ConfigError, match=f"127.0.0.1:{port}: .*pick another --port"):
            check_listen("127.0.0.1", port)
    check_listen("127.0.0.1", port)  # free again: no error
    with pytest.raises(ConfigError, match="--host 'no-such-host.invalid' is not an address"):
        check_listen("no-such-host.invalid", 7860)


@pytest.mark.parametrize(("error", "expected"), [
    (IndexBusy("an ingest is writing to the index"), "The index is busy"),
    (IndexMissing("no index"), "Nothing is indexed yet"),
    (LLMError("openai at http://h/v1: HTTP 401 for key sk-typed"), "⚠ Error: openai at http://h/v1: HTTP 401"),
])
def test_chat_turns_errors_into_a_message(monkeypatch, error, expected):
    from rag.ui import App

    app = App(Settings())

    def fail(settings):
        raise error

    monkeypatch.setattr(app, "asker", fail)
    *_, (chat, _, turns, box, _) = list(app.chat("a question", [], "extractive", "", "", "", "sk-typed", 5))
    assert expected in html.unescape(chat[-1]["content"]) and "sk-typed" not in chat[-1]["content"]
    assert turns[-1][1] == ""  # a failed turn is not history for follow-ups
    assert box == ""


def test_chat_refusal_is_the_wording_of_the_prompts_in_use(fake_seed_dir, tmp_path):
    from rag.prompts import load
    from rag.ui import App

    (tmp_path / "refusal.txt").write_text("Nothing in these papers answers that.")
    app = App(Settings(data_dir=fake_seed_dir, prompts_dir=tmp_path))
    *_, (chat, _, _, _, _) = list(app.chat("What is the best recipe for sourdough bread?", [], "extractive",
                                        "", "", "", "", 5))
    shown = chat[-1]["content"]
    assert "Nothing in these papers answers that." in shown
    assert load("refusal").text not in shown, "the default wording is not shown beside the override"


def test_empty_collection_shows_the_hint_everywhere():
    """No index yet (the autouse data_dir is empty): the header, chat and search all say what to do."""
    from rag.ui import EMPTY_HINT, App

    app = App(Settings())
    status, *buttons = app.status()
    assert status == EMPTY_HINT and all(b["visible"] is False for b in buttons)
    *_, (chat, sources, _, _, _) = list(app.chat("What does LoRA-GA do?", [], "extractive", "", "", "", "", 5))
    assert chat[-1]["content"] == EMPTY_HINT
    assert "Nothing is indexed yet" in app.search("LoRA", "hybrid", 5)


# --- slow: the real app in a real browser -------------------------------------------------------
browser_test = [pytest.mark.slow,
                pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install chromium")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ui_data(fake_seed_dir, tmp_path_factory) -> Path:
    """A copy of the seed index: the upload test adds a paper to it."""
    path = tmp_path_factory.mktemp("ui") / "data"
    shutil.copytree(fake_seed_dir, path)
    return path


@pytest.fixture(scope="module")
def server_log(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ui-log") / "server.log"


@pytest.fixture(scope="module")
def ui_url(ui_data, server_log):
    import httpx

    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RAG_", "OPENAI_", "OLLAMA_", "GRADIO_"))}
    env.update(RAG_DATA_DIR=str(ui_data), HF_HUB_OFFLINE="1", **FAKE_ENV)
    log = server_log
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "ui", "--port", str(port)], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 90
    try:
        while f"at {url}" not in log.read_text():  # launch prints its URL once it serves
            if proc.poll() is not None:
                pytest.fail(f"rag ui exited with {proc.returncode}:\n{log.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"rag ui did not serve within 90 s:\n{log.read_text()}")
            time.sleep(0.2)
        assert httpx.get(url, timeout=10).status_code == 200
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-background-networking", "--disable-component-update", "--no-first-run",
            "--disable-sync"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, ui_url):
    """A fresh browser tab on the app, failing the test if it asks anything of another host."""
    from playwright.sync_api import expect

    # Every expectation waits on its condition; on a loaded machine a render can take far longer
    # than Playwright's default 5 s, and waiting longer costs nothing when it comes sooner.
    expect.set_options(timeout=30_000)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    elsewhere: list[str] = []
    tab.on("request", lambda r: None if r.url.startswith(("http://127.0.0.1", "data:", "blob:"))
           else elsewhere.append(r.url))
    tab.goto(ui_url)
    expect(tab.locator("#status")).to_contain_text("papers", timeout=30_000)
    yield tab
    context.close()
    assert not elsewhere, f"the page contacted other hosts: {elsewhere}"


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def new_chat(page) -> None:
    """Start over, and wait until the page has: the reset also empties the question box, so a question
    typed before it lands would be wiped (seen once under load)."""
    from playwright.sync_api import expect

    page.locator("#new-chat").click()
    expect(page.locator("#chatbot [data-testid=bot]")).to_have_count(0)
    expect(page.locator("#sources")).to_contain_text("Sources appear here")


def ask(page, question: str, n: int):
    """Ask in the chat box and wait for the n-th answer to finish (no streaming cursor, no spinner)."""
    from playwright.sync_api import expect

    page.locator("#question textarea").fill(question)
    page.locator("#ask").click()
    reply = page.locator("#chatbot [data-testid=bot]").nth(n - 1)
    expect(reply).to_be_visible()
    expect(reply).not_to_contain_text("▍", timeout=30_000)  # the streaming cursor: gone when done
    return reply


def upload(page, path: Path) -> None:
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Add abstracts").click()
    page.locator("#upload input[type=file]").set_input_files(str(path))
    expect(uploaded(page, path.name)).to_have_count(1)  # on the server: Add would send it
    page.locator("#add-go").click()


def uploaded(page, name: str):
    """The upload box's row for a file, found by its name as a whole: the box shows the name as two
    spans ("binary" ".jsonl") that render with or without a space between them."""
    return page.locator(f'#upload [aria-label="{name}"]')


@pytest.mark.usefixtures("ui_url")
class TestBrowser:
    pytestmark = browser_test

    def test_ask_click_citation_follow_up_new_chat(self, page, browser, ui_url):
        from playwright.sync_api import expect

        reply = ask(page, SEED_QUESTION, 1)
        expect(reply).to_contain_text("[1]")
        expect(reply.locator('a.cite[href="#src-1"]').first).to_be_visible()
        card = page.locator("#src-1")
        expect(card).to_contain_text("LoRA-GA")
        expect(card.locator("mark").first).to_contain_text("first step")
        answered = shot(page, "answer")
        if os.environ.get("RAG_UPDATE_SCREENSHOT") == "1":  # README's picture: refresh it on purpose only
            (ROOT / "docs").mkdir(exist_ok=True)
            shutil.copyfile(answered, ROOT / "docs" / "ui.png")

        page.locator("#sources").evaluate("e => e.scrollTop = e.scrollHeight")  # card 1 out of view
        reply.locator("a.cite").last.click()
        number = page.evaluate("location.hash")
        assert number.startswith("#src-")
        expect(page.locator(number)).to_be_in_viewport()
        reply.locator('a.cite[href="#src-1"]').first.click()
        expect(page).to_have_url(ui_url + "#src-1")
        expect(card).to_be_in_viewport()
        shot(page, "citation-clicked")

        other = browser.new_context().new_page()  # another tab has its own, empty chat
        other.goto(ui_url)
        expect(other.locator("#status")).to_contain_text("papers", timeout=30_000)
        expect(other.locator("#chatbot [data-testid=bot]")).to_have_count(0)
        other.context.close()

        follow = ask(page, "Is it faster than vanilla LoRA?", 2)
        expect(follow).to_contain_text("faster than vanilla LoRA")
        expect(follow.locator("a.cite").first).to_be_visible()
        shot(page, "follow-up")

        new_chat(page)

    def test_the_first_example_question_gets_a_cited_answer(self, page):
        from playwright.sync_api import expect

        from rag.prompts import load

        example = page.locator("button.example").first
        expect(example).to_be_visible()
        example.click()
        reply = page.locator("#chatbot [data-testid=bot]").first
        expect(reply).to_be_visible()
        expect(reply).not_to_contain_text("▍")
        expect(reply.locator("a.cite").first).to_be_visible()
        expect(reply).not_to_contain_text(load("refusal").text)
        new_chat(page)

    def test_refused_question_lists_nearest_papers(self, page):
        from playwright.sync_api import expect

        reply = ask(page, "What is the recipe for baking sourdough bread?", 1)
        expect(reply).to_contain_text("does not cover")
        expect(page.locator("#sources")).to_contain_text("Nearest papers")
        assert page.locator("#sources .src-card").count() >= 1
        shot(page, "refused")

    def test_llm_error_shows_in_chat_with_sources(self, page, server_log):
        from playwright.sync_api import expect

        page.get_by_text("Settings (this tab only)").click()
        page.locator("#backend").get_by_text("openai", exact=True).click()
        page.locator("#model input, #model textarea").first.fill("any-model")
        page.locator("#base-url input, #base-url textarea").first.fill(f"http://127.0.0.1:{free_port()}/v1")
        page.locator("#api-key input").fill("sk-ui-test-secret")
        reply = ask(page, SEED_QUESTION, 1)
        expect(reply).to_contain_text("Error:")
        expect(page.locator("#sources .src-card").first).to_be_visible()
        assert "sk-ui-test-secret" not in page.locator("#chatbot").inner_html()
        assert "sk-ui-test-secret" not in server_log.read_text()
        shot(page, "llm-error")
        page.locator("#backend").get_by_text("extractive", exact=True).click()  # the app is still up
        expect(ask(page, SEED_QUESTION, 2)).to_contain_text("[1]")

    def test_search_tab_ranks_papers(self, page):
        import re

        from playwright.sync_api import expect

        page.get_by_role("tab", name="Search").click()
        page.locator("#search-query textarea").fill("LoRA initialization gradient")
        page.locator("#search-go").click()
        cards = page.locator("#hits .src-card")
        expect(cards.first).to_be_visible()
        assert cards.count() >= 5
        expect(cards.first).to_contain_text("1.")
        expect(page.locator("#hits")).to_contain_text("LoRA")
        expect(cards.first).to_contain_text(re.compile(r"(strong|fair|weak) match \d+%"))   # a label, not a raw score
        page.locator("#mode").get_by_text("bm25", exact=True).click()
        page.locator("#search-go").click()
        expect(cards.first).to_contain_text("keyword match")   # BM25 alone has no absolute scale
        shot(page, "search")

    def test_filters_change_the_sources_and_cite_gives_the_cited_paper(self, page):
        """A year filter changes which papers answer; Cite lists the one cited, as BibTeX and as a
        file; a year that is not one is a message in the page."""
        import re

        from playwright.sync_api import expect

        def years() -> list[int]:  # the year each source card shows ("2024 · fair match 48%"); 0 for none
            return [int(m.group()) if (m := re.match(r"\d{4}", meta)) else 0
                    for meta in page.locator("#sources .src-meta").all_inner_texts()]

        question = "What does Bone (Block Affine) emphasize?"  # a 2024 seed paper
        ask(page, question, 1)
        assert min(years()) < 2024, "unfiltered, older or undated papers come up too"
        page.get_by_text("Filters", exact=True).click()
        page.locator("#since input").fill("2024")
        expect(page.locator("#filters")).to_contain_text("Filters: since 2024")  # the label says so, closed too
        new_chat(page)
        reply = ask(page, question, 1)
        expect(page.locator("#sources")).to_contain_text("Filters: since 2024")
        assert years() and min(years()) >= 2024
        cited = page.locator(reply.locator("a.cite").first.get_attribute("href"))
        title = cited.locator("b").nth(1).inner_text()

        page.locator("#cite").click()
        expect(page.locator("#references")).to_contain_text("@article{")
        expect(page.locator("#references")).to_contain_text(f"title = {{{title}}}")
        with page.expect_download() as download:
            page.locator("#cite-download").click()
        assert download.value.suggested_filename == "references.bib"
        assert title in Path(download.value.path()).read_text()
        shot(page, "cite")

        page.locator("#until input").fill("20x1")
        expect(page.locator("#filters-note")).to_contain_text('"20x1" is not a year')
        page.locator("#question textarea").fill(question)
        page.locator("#ask").click()
        expect(page.locator("#chatbot [data-testid=bot]").last).to_contain_text('"20x1" is not a year')
        expect(page.locator("#references")).to_be_hidden()  # the references of the answer before are gone
        expect(page.locator("#question textarea")).to_have_value(question)

    def test_upload_then_ask_about_the_new_paper(self, page):
        from playwright.sync_api import expect

        upload(page, FIXTURES / "new_paper.jsonl")
        report = page.locator("#ingest-report")
        expect(report).to_contain_text("1 added", timeout=90_000)
        expect(page.locator("#status")).to_contain_text("187 papers")
        shot(page, "upload")
        page.get_by_role("tab", name="Chat").click()
        reply = ask(page, "How much do Quokkaformer hopping schedules reduce the pretraining loss?", 1)
        expect(reply.locator("a.cite").first).to_be_visible()
        cited = reply.locator("a.cite").first.get_attribute("href")
        expect(page.locator(cited)).to_contain_text("Quokkaformer")

    def test_a_hostile_abstract_is_shown_as_text(self, page):
        """Markdown images and links, HTML and scripts in an abstract are inert in the chat and the
        source cards; the page fixture fails if anything is fetched from another host."""
        from playwright.sync_api import expect

        upload(page, FIXTURES / "hostile_paper.jsonl")
        expect(page.locator("#ingest-report")).to_contain_text("1 added")
        page.get_by_role("tab", name="Chat").click()
        reply = ask(page, "How much do pangolin scales cut the memory of armoured transformers?", 1)
        expect(reply).to_contain_text("41%")
        expect(reply).to_contain_text("![tracker](http://tracker.invalid/pixel.png)")
        for where in (page.locator("#chatbot"), page.locator("#sources")):
            assert where.locator("img, script").count() == 0
            assert where.locator('a[href*="invalid"]').count() == 0
        new_chat(page)

    def test_bad_uploads_say_why_and_change_nothing(self, page, tmp_path):
        from playwright.sync_api import expect

        before = page.locator("#status").inner_text()
        upload(page, FIXTURES / "unknown_schema.csv")
        report = page.locator("#ingest-report")
        expect(report).to_contain_text("no abstract column", timeout=60_000)
        expect(report).to_contain_text("nothing was changed")
        # The handler empties the upload box; a second file set before that lands is lost (seen under load).
        expect(uploaded(page, "unknown_schema.csv")).to_have_count(0, timeout=30_000)
        binary = tmp_path / "binary.jsonl"
        binary.write_bytes(bytes(range(256)) * 4)
        upload(page, binary)
        expect(report).to_contain_text("binary file", timeout=60_000)
        shot(page, "bad-upload")
        assert page.locator("#status").inner_text() == before


def test_uploads_are_kept_under_the_data_dir_by_their_own_name(tmp_path):
    from rag.ui import keep_upload

    upload = tmp_path / "gradio" / "abc123" / "my papers.jsonl"
    upload.parent.mkdir(parents=True)
    upload.write_text('{"title": "T", "abstract": "A."}\n')
    kept, new = keep_upload(upload, tmp_path / "data")
    assert kept == tmp_path / "data" / "uploads" / "my papers.jsonl" and kept.read_text() == upload.read_text()
    assert new
    assert keep_upload(upload, tmp_path / "data") == (kept, False), "the same file again is not copied twice"
    upload.write_text('{"title": "U", "abstract": "B."}\n')
    assert keep_upload(upload, tmp_path / "data")[0].name == "my papers-1.jsonl", "a different file keeps both"


def test_an_upload_during_an_ingest_waits_its_turn_and_a_failed_re_upload_loses_nothing(tmp_path, monkeypatch):
    import threading
    import time

    import rag.ingestion
    from rag.store import status, writing
    from rag.ui import App

    settings = Settings(data_dir=tmp_path / "data")
    (tmp_path / "gradio" / "x").mkdir(parents=True)
    (tmp_path / "gradio" / "y").mkdir(parents=True)
    upload = write_jsonl(tmp_path / "gradio" / "x" / "mine.jsonl", synthetic_papers(3))
    app = App(settings)
    app.add(str(upload), progress=lambda *a, **k: None)
    kept = settings.data_dir / "uploads" / "mine.jsonl"
    assert status(settings)["files"] == [{"path": str(kept), "papers": 3}]

    other = write_jsonl(tmp_path / "gradio" / "y" / "other.jsonl",
                        [{**p, "id": f"other-{i}"} for i, p in enumerate(synthetic_papers(2, seed=5))])
    held = threading.Event()

    def another_ingest():  # holds the ingest lock as a long `rag ingest` in another process would
        with writing(settings):
            held.set()
            time.sleep(3)

    thread = threading.Thread(target=another_ingest)
    thread.start()
    held.wait()
    started = time.monotonic()
    shown = app.add(str(other), progress=lambda *a, **k: None)[0]
    assert time.monotonic() - started >= 2 and "2 added" in shown
    thread.join()

    def busy(*args, **kwargs):
        raise IndexBusy("another ingest is writing")

    monkeypatch.setattr(rag.ingestion, "ingest", busy)
    (tmp_path / "gradio" / "x").mkdir()  # Gradio's copy of the first upload is gone: upload it again
    upload = write_jsonl(tmp_path / "gradio" / "x" / "mine.jsonl", synthetic_papers(3))
    shown = app.add(str(upload), progress=lambda *a, **k: None)[0]  # the same file again, and it fails
    assert "another ingest" in shown
    assert kept.is_file(), "the copy the catalog names from the first upload is still there"
    assert {"path": str(kept), "papers": 3} in status(settings)["files"]


def test_credentials_in_configured_urls_never_reach_the_page():
    from rag.ui import App, build

    server = Settings(llm="openai", openai_base_url="http://bob:s3cret@llm.internal/v1",
                      ollama_host="http://admin:pw2@ollama.internal:11434", openai_api_key="sk-server",
                      chroma_url="http://carol:pw3@chroma.internal:8000")
    for lock in (False, True):  # a hidden field's value is in the page's config all the same
        page = json.dumps(build(server, lock_llm=lock).get_config_file(), default=str)
        assert "llm.internal" in page or lock
        assert not any(secret in page for secret in ("s3cret", "pw2", "pw3", "sk-server"))
    shown = App(server).request_settings("openai", "m", "http://llm.internal/v1", "http://ollama.internal:11434",
                                         "", 5)
    assert shown.openai_base_url == server.openai_base_url, "sent back as shown, it means the server's own URL"
    assert shown.ollama_host == server.ollama_host and shown.openai_api_key.get_secret_value() == "sk-server"


def test_uploads_are_checked_before_parsing_reported_in_bounds_and_removed(tmp_path):
    from rag.ui import MAX_UPLOAD_LINES, REJECTS_SHOWN, App

    settings = Settings(data_dir=tmp_path / "data", max_upload_mb=1)
    app = App(settings)
    gradio_tmp = tmp_path / "gradio"

    def upload(name: str, body: bytes) -> str:
        path = gradio_tmp / name.split(".")[0] / name
        path.parent.mkdir(parents=True)
        path.write_bytes(body)
        shown = app.add(str(path), progress=lambda *a, **k: None)[0]
        assert not path.exists() and not path.parent.exists(), "Gradio's temp copy is removed"
        return shown

    refused = {
        "big.jsonl": b'{"title": "T", "abstract": "' + b"a" * 1_500_000 + b'"}\n',
        "many.jsonl": b"{}\n" * (MAX_UPLOAD_LINES + 1),
    }
    for name, body in refused.items():
        shown = upload(name, body)
        assert "rag-error" in shown and "nothing was changed" in shown, shown
    assert "1.5 MB" in upload("big2.jsonl", refused["big.jsonl"])
    assert not (settings.data_dir / "uploads").exists() or not list((settings.data_dir / "uploads").iterdir())

    good = json.dumps({"title": "Sparse attention for long documents",  # an abstract, not a stub: 50+ characters
                       "abstract": "Sparse attention cuts the memory of long-document transformers by half."})
    shown = upload("mixed.jsonl", (good + "\n" + "not json\n" * 1000).encode())
    assert "1 added" in shown and "1000 rejected" in shown
    assert shown.count("<li>") == REJECTS_SHOWN + 1 and f"and {1000 - REJECTS_SHOWN:,} more" in shown
    assert len(shown) < 10_000, "the page gets a summary, not the whole report"
    saved = list((settings.data_dir / "uploads" / "reports").glob("*-mixed.json"))
    assert len(saved) == 1 and len(json.loads(saved[0].read_text())["rejected"]) == 1000
    assert saved[0].name in shown


def test_no_upload_removes_the_tab_and_the_server_refuses_every_upload(tmp_path):
    import httpx

    from rag.ui import serve

    for uploads, expected in ((False, 413), (True, 200)):
        demo, url = serve(Settings(data_dir=tmp_path / "data"), port=free_port(), uploads=uploads)
        try:
            config = httpx.get(f"{url}config", timeout=10).json()
            has_tab = any(c.get("props", {}).get("elem_id") == "upload" for c in config["components"])
            assert has_tab is uploads
            posted = httpx.post(f"{url}gradio_api/upload", files={"files": ("x.jsonl", b"{}\n" * 1000)}, timeout=10)
            assert posted.status_code == expected, posted.text
        finally:
            demo.close()
