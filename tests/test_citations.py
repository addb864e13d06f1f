"""Citation parsing and checking: tiny pure-function tests."""
from __future__ import annotations

import pytest

from rag.citations import check, expand, strip_citations
from rag.text import sentences

ABSTRACTS = ["LoRA-GA aligns the gradients of the low-rank product with full fine-tuning and converges faster.",
             "We fold proteins with diffusion models over residue frames."]


@pytest.mark.parametrize("group, numbers", [("1", [1]), ("1, 3", [1, 3]), ("2-4", [2, 3, 4]),
                                            ("1,2 ,5", [1, 2, 5]), ("3\u20135", [3, 4, 5])])
def test_expand_groups(group, numbers):
    assert expand(group) == numbers


def test_citation_naming_no_source_is_removed_and_reported():
    checked = check("LoRA-GA converges faster [1][7]. Proteins fold by diffusion [9].", ABSTRACTS)
    assert checked.removed == [7, 9]
    assert "[7]" not in checked.text and "[9]" not in checked.text
    assert checked.text.startswith("LoRA-GA converges faster [1].")
    assert checked.verdicts[1].cited == [] and not checked.verdicts[1].supported


def test_claim_citing_the_wrong_paper_is_flagged():
    checked = check("LoRA-GA aligns gradients with full fine-tuning [2]. Proteins fold with diffusion [2].",
                    ABSTRACTS)
    first, second = checked.verdicts
    assert not first.supported and first.support < 0.5
    assert second.supported and second.support == 1.0


def test_grouped_and_ranged_citations_are_understood():
    checked = check("Both gradients and proteins appear [1, 2]. Also [1-2].", ABSTRACTS)
    assert checked.verdicts[0].cited == [1, 2]
    assert checked.removed == []


def test_sentence_split_keeps_citations_and_abbreviations():
    text = "Smith et al. propose X [1]. It reaches 91.2% accuracy [2][3]. E.g. this works."
    assert sentences(text) == ["Smith et al. propose X [1].", "It reaches 91.2% accuracy [2][3].",
                               "E.g. this works."]
    assert strip_citations("It reaches 91.2% [2][3].") == "It reaches 91.2%."
