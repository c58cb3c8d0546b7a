"""Reading a stack's config: every `rayplane:*` key from Pulumi's config, parsed by the stack's
`kind` into one model tree before any resource is registered."""

import json

from pulumi.runtime import config as runtime_config
from pydantic import ValidationError

from components.config.base import ConfigError, error_lines
from components.config.platform import PlatformStack
from components.config.team import TeamStack

NAMESPACE = "rayplane"  # the config namespace: `rayplane:<key>` in stack files
StackConfig = PlatformStack | TeamStack
STACK_KINDS: dict[str, type[StackConfig]] = {"platform": PlatformStack, "team": TeamStack}


def parse(raw: dict) -> StackConfig:
    """Validate a raw config dict (keys as in the stack file, without the `rayplane:` prefix)."""
    model = STACK_KINDS.get(raw.get("kind"))
    if model is None:
        raise ConfigError([f"kind: must be one of {', '.join(STACK_KINDS)}, got {raw.get('kind')!r}"])
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(error_lines(exc)) from None


def _value(raw: str):
    # Pulumi hands structured config values over as JSON text; scalars stay strings.
    return json.loads(raw) if raw[:1] in "{[" else raw


def from_pulumi_config(everything: dict[str, str], secret_keys: set[str]) -> StackConfig:
    """The stack config from Pulumi's config map (full keys, JSON text values)."""
    raw = {k.removeprefix(f"{NAMESPACE}:"): _value(v) for k, v in everything.items() if k.startswith(f"{NAMESPACE}:")}
    if "gcp:project" in everything:
        raw["gcp:project"] = everything["gcp:project"]
    if "secrets" in raw and f"{NAMESPACE}:secrets" not in secret_keys:
        raise ConfigError(["secrets: set these with `pulumi config set --secret --path 'secrets.<name>'`"])
    return parse(raw)


def load() -> StackConfig:
    """Read every `rayplane:*` key (so that a misspelt key fails instead of being ignored)."""
    # pulumi.Config only answers for keys it is asked about; the full map is needed to find typos.
    # The engine hands config to the program in the environment; mocks and the automation API set it
    # in the runtime, which `is_config_secret` answers for.
    everything = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    secret_keys = set(runtime_config.get_config_secret_keys_env())
    secret_keys |= {key for key in everything if runtime_config.is_config_secret(key)}
    return from_pulumi_config(everything, secret_keys)
