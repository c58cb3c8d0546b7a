"""What every config model shares: the camelCase model base, names and zones, and errors that
name their key path (`nodePools[1].accelerator: ...`)."""

import re
from typing import Annotated

import pulumi
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, ValidationInfo
from pydantic.alias_generators import to_camel

REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")
ZONE = re.compile(r"^([a-z]+-[a-z]+[0-9]+)-[a-z]$")
DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
PROJECT = r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$"


class Model(BaseModel):
    """camelCase keys as in stack files and Kubernetes objects; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, frozen=True)


class ConfigError(pulumi.RunError):
    """An invalid stack config; pulumi prints RunError messages without a traceback."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("invalid stack config:\n" + "\n".join(f"  {e}" for e in errors))


def check_name(value: str, max_len: int) -> str:
    if not DNS_LABEL.match(value) or len(value) > max_len:
        raise ValueError(
            f"{value!r} is not a valid name: lowercase letters, digits and '-', starting with a letter,"
            f" not ending with '-', at most {max_len} characters"
        )
    return value


def Name(max_len: int):  # used as a type: `Name(30)`
    """A DNS label of at most `max_len` characters."""
    return Annotated[str, AfterValidator(lambda value: check_name(value, max_len))]


def _zone(value: str) -> str:
    if not ZONE.match(value):
        raise ValueError(f"{value!r} is not a zone (e.g. us-central1-a)")
    return value


Zone = Annotated[str, AfterValidator(_zone)]


def max_not_below(min_field: str):
    """A field validator: the validated maximum must not be below the `min_field` before it."""

    def check(cls, maximum: int, info: ValidationInfo) -> int:
        minimum = info.data.get(min_field, 0)
        if maximum < minimum:
            raise ValueError(f"{to_camel(info.field_name)} ({maximum}) must be >= {to_camel(min_field)} ({minimum})")
        return maximum

    return classmethod(check)


def key_path(loc: tuple) -> str:
    """("nodePools", 1, "accelerator") -> "nodePools[1].accelerator"."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def error_lines(exc: ValidationError) -> list[str]:
    """One `key.path: reason` line per error; a validator's multi-line message gives several."""
    lines = []
    for err in exc.errors(include_url=False):
        path = key_path(err["loc"])
        message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
        lines.extend(f"{path}: {line}" if path else line for line in message.split("\n"))
    return lines
