"""Prompt templates: plain files in rag/templates/, shipped in the package (importlib.resources),
loaded by name, variables checked at load.

A user directory (RAG_PROMPTS_DIR) may override any of them; a template that lacks a variable
the code fills, or names one it does not, is refused with the names listed.
"""
from __future__ import annotations

import re
import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from rag.errors import ConfigError

# Inside the package, so that a wheel (`pip install .`, not only -e) carries them.
PROMPTS_DIR = Path(str(resources.files("rag") / "templates"))

# The variables each template is given. Every one must appear (a prompt that drops {sources}
# would answer from nothing), and no other may.
VARIABLES: dict[str, frozenset[str]] = {
    "system": frozenset({"refusal", "max_sentences"}),
    "context": frozenset({"sources", "question", "max_sentences", "refusal"}),
    "source": frozenset({"n", "title", "date", "text"}),
    "refusal": frozenset(),
    "partial": frozenset({"missing"}),
    "condense": frozenset({"history", "question"}),
}


@dataclass(frozen=True)
class Template:
    name: str
    path: Path
    text: str

    def render(self, **values: object) -> str:
        return self.text.format(**values)


def _fields(text: str, path: Path) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as e:
        raise ConfigError(f"prompt {path}: {e} (write a literal brace as {{{{ or }}}})") from None


def load(name: str, override_dir: Path | None = None) -> Template:
    if name not in VARIABLES:
        raise ConfigError(f"no prompt named {name!r}; known: {', '.join(sorted(VARIABLES))}")
    path = PROMPTS_DIR / f"{name}.txt"
    if override_dir is not None and (override_dir / f"{name}.txt").is_file():
        path = override_dir / f"{name}.txt"
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as e:
        raise ConfigError(f"cannot read prompt {path}: {e.strerror}") from None
    found = _fields(text, path)
    missing, unknown = VARIABLES[name] - found, found - VARIABLES[name]
    if missing or unknown:
        parts = []
        if missing:
            parts.append("missing " + ", ".join("{" + m + "}" for m in sorted(missing)))
        if unknown:
            parts.append("unknown " + ", ".join("{" + u + "}" for u in sorted(unknown)))
        raise ConfigError(f"prompt {path}: {'; '.join(parts)}")
    return Template(name, path, text)


_TAG = re.compile(r"<\s*(/?)\s*source", re.IGNORECASE)


def quote_source(text: str) -> str:
    """Sources are data: a '<source' or '</source' inside an abstract must not close or open a
    source block in the prompt."""
    return _TAG.sub(lambda m: "‹" + m.group(1) + "source", text)


def quote_attribute(text: str) -> str:
    """A title or date inside a `<source ... title="...">` tag: one line, and a '"' cannot end the
    attribute early and forge others (`title="x" n="9"`)."""
    return quote_source(" ".join(text.split())).replace('"', "&quot;")
