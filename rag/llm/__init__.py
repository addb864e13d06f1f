"""Answer backends behind one Protocol (`ChatBackend`): the offline extractive answerer, an
OpenAI-compatible endpoint and Ollama; `make_backend(settings)` builds the one settings name."""
from rag.llm.base import AnswerRequest, ChatBackend, Message, SourceText, make_backend

__all__ = ["AnswerRequest", "ChatBackend", "Message", "SourceText", "make_backend"]
