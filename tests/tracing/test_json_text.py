"""Span JSON text: the C encoder built once gives json.dumps's text; odd values never break the agent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evalkit.context import CaseContext
from evalkit.redact import MASK, Redactor
from evalkit.schema import Case
from evalkit.store.db import open_store
from evalkit.tracing import genai
from evalkit.tracing.json_text import compact, spaced
from evalkit.tracing.setup import StoreTracer
from evalkit.tracing.spans import function_span, truncate_json

VALUES: list[Any] = [
    {"a": [1, 2.5, None, True, False], "é": "quote \" back\\slash \n tab\t \u2028"},
    "a plain string with \"quotes\"", 3, -0.0, 1e300, [], {}, [float("nan"), float("inf")],
    {1: "int key", None: "none key", 2.5: "float key"}, ({"nested": ({"deep": [1]},)},),
    {"odd": object.__new__(type("Odd", (), {"__str__": lambda self: "odd-str"}))},
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_same_text_as_json_dumps(value: Any) -> None:
    assert compact(value) == json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))
    assert spaced(value) == json.dumps(value, ensure_ascii=False, default=str)


def test_a_value_holding_itself_raises_instead_of_looping() -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    with pytest.raises(RecursionError):
        compact(loop)
    with pytest.raises(TypeError):
        compact({(1, 2): "tuple key"})


def test_odd_arguments_become_their_redacted_repr() -> None:
    red = Redactor()
    loop: dict[str, Any] = {"q": "printer", "api_key": "sk-proj-CYCLEABCDEFGHIJKLMNOP"}
    loop["self"] = loop
    text = truncate_json(loop, redactor=red)
    assert text.startswith("{'q': 'printer'") and "{...}" in text
    assert "CYCLEABCDEF" not in text and MASK in text
    assert truncate_json({(1, 2): 3}, redactor=red) == "{(1, 2): 3}"


def test_a_traced_call_with_a_cyclic_argument_is_recorded(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.duckdb")
    tracer = StoreTracer(store)
    loop: list[Any] = ["step"]
    loop.append(loop)
    with tracer.case_span(CaseContext(run_id="cyc", case_id="c1"), Case(id="c1", input="q")), \
            function_span("plan", "tool", {"steps": loop}):
        pass
    tracer.flush()
    rows = store.query("SELECT name, attributes FROM spans WHERE run_id = 'cyc' ORDER BY name")
    store.close()
    assert [r["name"] for r in rows] == ["evalkit.case", "execute_tool plan"]
    attrs = json.loads(rows[1]["attributes"])
    assert attrs["gen_ai.tool.call.arguments"] == "{'steps': ['step', [...]]}"


_text = st.text(alphabet=st.sampled_from([*'ab "\\\n\t', "é", "\u2028", "\x00", "😀"]), max_size=8)
_content = st.one_of(_text, st.none(), st.integers(),
                     st.lists(st.one_of(st.fixed_dictionaries({"type": st.just("text"), "text": _text}),
                                        st.fixed_dictionaries({"type": st.just("image_url")}), _text), max_size=3))
_message = st.one_of(st.fixed_dictionaries({"role": st.one_of(_text, st.integers()), "content": _content}),
                     st.fixed_dictionaries({"content": _content}))


@given(st.lists(_message, max_size=4), _content, st.one_of(st.none(), _text, st.integers()))
@settings(max_examples=300, deadline=None)
def test_messages_written_straight_to_json_are_what_the_encoder_writes(messages: list[dict[str, Any]],
                                                                        completion: Any, reason: Any) -> None:
    assert genai.input_messages_json(messages) == spaced(genai.input_messages(messages))
    out = [{"role": "assistant", "parts": genai._parts(completion), "finish_reason": reason or "stop"}]
    assert genai.output_messages_json(completion, reason) == spaced(out)
    assert json.loads(genai.input_messages_json(messages)) == json.loads(json.dumps(genai.input_messages(messages),
                                                                                    default=str))
