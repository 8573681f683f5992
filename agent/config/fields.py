"""The common base of every config model, and a `field()` helper that keeps documentation next to each key.

The description given to `field()` is both the pydantic description and the text of docs/configuration.md (see
`agent.config.reference`), so the reference cannot drift from the code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError, PydanticUndefined


class Strict(BaseModel):
    """Frozen (safe to share between threads) and refusing unknown keys (a typo must not be silently ignored)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_means_default(cls, data: Any) -> Any:
        # `discovery:` with every line below it commented out reads as null; the installer meant "defaults".
        if not isinstance(data, dict):
            return data
        return {
            key: value
            for key, value in data.items()
            if not (
                value is None
                and key in cls.model_fields
                and not cls.model_fields[key].is_required()
                and cls.model_fields[key].get_default(call_default_factory=True) is not None
            )
        }


def field(
    default: Any = PydanticUndefined,
    description: str = "",
    *,
    type_name: str | None = None,
    default_text: str | None = None,
    **kwargs: Any,
) -> Any:
    """A pydantic Field whose description is required; `type_name`/`default_text` override what the docs show."""
    extra: dict[str, Any] = {}
    if type_name is not None:
        extra["type_name"] = type_name
    if default_text is not None:
        extra["default_text"] = default_text
    return Field(default, description=description, json_schema_extra=extra or None, **kwargs)


def cross_field(issues: Sequence[tuple[tuple[str | int, ...], str]]) -> PydanticCustomError:
    """An error for rules spanning several keys; each issue is (location below the validated value, message).

    Pydantic would place such an error on the model as a whole; carrying sub-locations in the context lets the
    loader point at the precise line of the offending key instead.
    """
    return PydanticCustomError(
        "cross_field",
        "{summary}",
        {"summary": "; ".join(message for _, message in issues), "issues": [tuple(i) for i in issues]},
    )
