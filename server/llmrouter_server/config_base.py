"""The base of every configuration section: unknown keys are errors, values frozen."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A configuration section; a key it does not define is an error naming the key."""

    model_config = ConfigDict(extra="forbid", frozen=True)
