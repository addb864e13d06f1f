"""LLM backends. HTTP ones (OpenAI-compatible, Ollama) implement `ChatBackend`; the offline
extractive answerer lives in rag.llm.extractive and needs no model at all."""
from rag.llm.base import ChatBackend, Message, make_backend

__all__ = ["ChatBackend", "Message", "make_backend"]
