"""What every config model shares: the camelCase model base, names and zones, and errors that
name their key path (`nodePools[1].accelerator: ...`)."""

import re
from typing import Annotated

import pulumi
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from workloads.config import within_int32

REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")
ZONE = re.compile(r"^([a-z]+-[a-z]+[0-9]+)-[a-z]$")
DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# A namespace is an RFC 1123 label (Kubernetes' IsDNS1123Label): it may start with a digit.
NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
PROJECT = r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$"


class Model(BaseModel):
    """camelCase keys as in stack files and Kubernetes objects; unknown keys are errors."""

    # No infinity or NaN: `ge` lets infinity through, and NaN compares false with every bound.
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, frozen=True, allow_inf_nan=False)
    _int32 = field_validator("*")(staticmethod(within_int32))


class ConfigError(pulumi.RunError):
    """An invalid stack config; pulumi prints RunError messages without a traceback."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("invalid stack config:\n" + "\n".join(f"  {e}" for e in errors))


def check_name(value: str, max_len: int) -> str:
    if not DNS_LABEL.fullmatch(value) or len(value) > max_len:
        raise ValueError(
            f"{value!r} is not a valid name: lowercase letters, digits and '-', starting with a letter,"
            f" not ending with '-', at most {max_len} characters"
        )
    return value


def check_namespace(value: str) -> str:
    if not NAMESPACE.fullmatch(value) or len(value) > 63:
        raise ValueError(
            f"{value!r} is not a valid namespace: lowercase letters, digits and '-', starting and ending with a"
            " letter or digit, at most 63 characters"
        )
    return value


Namespace = Annotated[str, AfterValidator(check_namespace)]


def Name(max_len: int):  # used as a type: `Name(30)`
    """A DNS label of at most `max_len` characters."""
    return Annotated[str, AfterValidator(lambda value: check_name(value, max_len))]


def _zone(value: str) -> str:
    if not ZONE.fullmatch(value):
        raise ValueError(f"{value!r} is not a zone (e.g. us-central1-a)")
    return value


Zone = Annotated[str, AfterValidator(_zone)]


def at_least(low: str, high: str):
    """A model validator: field `high` may not be below field `low`, either of them a default."""

    def check(model):
        if (top := getattr(model, high)) < (bottom := getattr(model, low)):
            raise ValueError(f"{to_camel(high)} ({top}) must be >= {to_camel(low)} ({bottom})")
        return model

    return model_validator(mode="after")(check)


def key_path(loc: tuple) -> str:
    """("nodePools", 1, "accelerator") -> "nodePools[1].accelerator"; a map's key is its own path
    (pydantic ends a key's loc with "[key]")."""
    path = ""
    for part in loc:
        if part == "[key]":
            continue
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
