"""The model facade: one way to call any model (litellm providers or ``mock/<name>``).

Importing this package does not import litellm.
"""

from evalkit.llm.cache import set_enabled as set_cache_enabled
from evalkit.llm.facade import complete, supports_json_schema
from evalkit.llm.mock import register_mock, unregister_mock
from evalkit.llm.types import CallRecord, Completion, ModelError

__all__ = [
    "CallRecord",
    "Completion",
    "ModelError",
    "complete",
    "register_mock",
    "set_cache_enabled",
    "supports_json_schema",
    "unregister_mock",
]
