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
