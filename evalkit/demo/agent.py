"""The demo IT-support agent: keyword retrieval over the knowledge base plus a few tools.

It is deliberately imperfect (a bag-of-words retriever and simple rules), so the demo shows
failures and their reasons. Tool calls are traced with :func:`evalkit.trace`.
"""

from __future__ import annotations

import re

from evalkit.demo.knowledge import ARTICLES, SERVICES
from evalkit.tracing.decorators import trace

__version__ = "1.2.0"

_STOP = set(["a", "an", "the", "to", "of", "and", "or", "i", "my", "me", "is", "it", "in", "on", "for", "with", "how", "do", "can", "you", "your", "what", "why", "not", "be", "are", "at", "this", "that"])
_WORD = re.compile(r"[a-z0-9]+")


def _tokens(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


@trace(kind="tool")
def search_kb(query: str, k: int = 1) -> list[str]:
    """Return the ids of the best-matching articles (word overlap)."""
    q = _tokens(query)
    ranked = sorted(ARTICLES, key=lambda a: (-len(q & _tokens(a.replace("-", " ") + " " + ARTICLES[a])), a))
    return [a for a in ranked[:k] if q & _tokens(a.replace("-", " ") + " " + ARTICLES[a])]


@trace(kind="tool")
def check_service_status(service: str) -> str:
    """Current status of a named service."""
    return SERVICES.get(service, "unknown service")


@trace(kind="tool")
def create_ticket(category: str, summary: str) -> str:
    """Open a service-desk ticket; returns its number."""
    number = 40000 + sum(map(ord, summary)) % 10000
    return f"INC{number}"


_INJECTION = re.compile(r"ignore (all|previous|your) (instructions|rules)|admin password|disable (mfa|security)", re.I)


@trace(kind="agent")
def answer(question: str) -> str:
    """Answer an IT-support question."""
    text = question.strip()
    low = text.lower()
    if _INJECTION.search(text):
        return "I can't help with that. IT will never share or bypass credentials or security controls."
    for service in SERVICES:
        if service in low and any(w in low for w in ("down", "outage", "not working", "status", "unavailable")):
            status = check_service_status(service)
            if status.startswith("operational"):
                ticket = create_ticket("incident", text[:80])
                return f"{service.title()} is operational on our side. I opened ticket {ticket} to look into your issue."
            return f"{service.title()} status: {status}."
    hits = search_kb(text)
    if not hits:
        ticket = create_ticket("general", text[:80])
        return f"I couldn't find an article for that. I opened ticket {ticket} for the service desk."
    article = ARTICLES[hits[0]]
    if any(w in low for w in ("broken", "replace", "cracked", "new laptop")):
        ticket = create_ticket("hardware", text[:80])
        return f"{article} I opened ticket {ticket} for you."
    return article
