"""The exceptions rag raises on purpose. The CLI and UI turn each into one clear line.

    RagError                    anything the user can act on; message is the whole story
    ├── ConfigError             a setting or flag that cannot work (bad model path, bad URL)
    ├── SourceError             input files that yielded nothing usable
    ├── QueryError              an empty or oversized query
    ├── IndexError_             the index: missing, built by another model, busy, unreadable
    │   ├── IndexMissing
    │   ├── ModelMismatch
    │   ├── IndexDamaged        a state file is missing or unreadable; the message names it and the way out
    │   ├── DiskFull            not enough free space to write: stopped before or at the write, nothing lost
    │   └── IndexBusy
    └── LLMError                an LLM backend failed (connection, HTTP status, bad stream)
        └── AnswerCut           an answer stopped part-way (token cap, repeating itself, deadline);
                                the text streamed before it stands

Anything else escaping is a bug: the CLI prints a traceback only with --debug.
"""
from __future__ import annotations


class RagError(Exception):
    exit_code = 1


class ConfigError(RagError):
    exit_code = 2


class SourceError(RagError):
    pass


class QueryError(RagError):
    exit_code = 2


class IndexError_(RagError):  # trailing underscore: do not shadow the builtin IndexError
    pass


class IndexMissing(IndexError_):
    pass


class ModelMismatch(IndexError_):
    pass


class IndexDamaged(IndexError_):
    pass


class DiskFull(IndexError_):
    exit_code = 74  # EX_IOERR


class IndexBusy(IndexError_):
    exit_code = 75  # EX_TEMPFAIL: try again later


class LLMError(RagError):
    exit_code = 3


class AnswerCut(LLMError):
    """The answer was stopped part-way; what had streamed stands (`text` holds it), `reason` says why:
    "repeat" (the model looped), "max_tokens" (rag stopped a server that ran past RAG_MAX_ANSWER_TOKENS),
    "length" (the server stopped at a token limit: RAG_MAX_ANSWER_TOKENS or its context) or "deadline"
    (RAG_LLM_DEADLINE)."""

    exit_code = 4

    def __init__(self, message: str, *, reason: str, text: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.text = text
