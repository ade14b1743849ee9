"""A small offline IT-support agent used by the demo suite (retrieval + tools, no LLM)."""
