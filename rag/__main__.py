"""`python -m rag` runs the `rag` command (useful where the script is not on PATH, e.g. an MCP client config)."""
from rag.cli import main

main()
