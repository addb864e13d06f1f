"""README documents every setting: one settings object, fed by env vars the user can find."""
from __future__ import annotations

from conftest import ROOT

from rag.settings import Settings


def test_every_setting_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    missing = []
    for name, field in Settings.model_fields.items():
        env = field.validation_alias if isinstance(field.validation_alias, str) else f"RAG_{name.upper()}"
        if f"`{env}`" not in readme:
            missing.append(env)
        assert field.description, f"{name} has no description"
    assert missing == []


def _commands() -> list[str]:
    import typer.main

    from rag.cli import app

    return sorted(typer.main.get_command(app).commands)


def test_every_command_help_teaches_with_examples_and_its_environment():
    from typer.testing import CliRunner

    from rag.cli import app

    commands = _commands()
    assert {"ingest", "search", "ask", "chat", "mcp", "ui", "eval", "remove", "status", "doctor"} <= set(commands)
    for name in commands:
        result = CliRunner().invoke(app, [name, "--help"], prog_name="rag", terminal_width=100)
        assert result.exit_code == 0, name
        text = result.output
        assert "Examples:" in text and f"rag {name}" in text.split("Examples:")[1], name
        assert "Environment:" in text and "RAG_DATA_DIR" in text, name
        # typer's own decorations read like code, not like a command line
        for noise in ("<str>", "<int>", "<path>", "<list", "{", "int range"):
            assert noise not in text.split("Examples:")[0], (name, noise)
    ask = CliRunner().invoke(app, ["ask", "--help"], prog_name="rag", terminal_width=100).output
    assert "Usage: rag ask [OPTIONS] QUESTION" in ask
    assert "OPENAI_BASE_URL" in ask and "OLLAMA_HOST" in ask
    assert "--port PORT" in CliRunner().invoke(app, ["ui", "--help"], terminal_width=100).output
    assert "[PATH...]" in CliRunner().invoke(app, ["ingest", "--help"], terminal_width=100).output


def test_scores_read_as_labels():
    from rag.decision import match_label

    assert match_label(0.71, 0.40) == "strong match 71%"
    assert match_label(0.45, 0.40) == "fair match 45%"
    assert match_label(0.21, 0.40) == "weak match 21%"
    assert match_label(-0.05, 0.40) == "weak match 0%"
    assert match_label(None, 0.40) == "keyword match"


def test_cli_output_has_labels_not_raw_scores_and_no_stray_blank_lines(fake_seed_dir, tmp_path):
    import json

    from conftest import run_rag, write_jsonl

    search = run_rag("search", "LoRA gradient initialization", "-k", "3", env={"RAG_DATA_DIR": str(fake_seed_dir)})
    assert search.returncode == 0, search.stderr
    assert search.stdout.count(" match ") == 3 and "%" in search.stdout
    raw = json.loads(run_rag("search", "LoRA gradient initialization", "-k", "1", "--json",
                             env={"RAG_DATA_DIR": str(fake_seed_dir)}).stdout)["hits"][0]
    assert f"{raw['score']:.4f}" not in search.stdout   # the fused score is for --json only
    papers = [{"title": "A paper on widgets", "abstract": "We study widgets in depth and measure them. " * 3}]
    ingest = run_rag("ingest", str(write_jsonl(tmp_path / "p.jsonl", papers)),
                     env={"RAG_DATA_DIR": str(tmp_path / "d")})
    assert ingest.returncode == 0, ingest.stderr
    assert ingest.stderr == "" and not ingest.stdout.startswith("\n") and "\n\n" not in ingest.stdout
