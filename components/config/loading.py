"""Reading a stack's config: every `rayplane:*` key from Pulumi's config, parsed by the stack's
`kind` into one model tree before any resource is registered."""

import json
from pathlib import Path

import pulumi
import yaml
from pulumi.runtime import config as runtime_config
from pydantic import ValidationError

from components.config.base import ConfigError, error_lines
from components.config.platform import PlatformStack
from components.config.team import TeamStack

NAMESPACE = "rayplane"  # the config namespace: `rayplane:<key>` in stack files
STACKS = Path(__file__).resolve().parents[2] / "stacks"  # Pulumi.yaml: stackConfigDir
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
    return json.loads(raw) if raw.startswith(("{", "[")) else raw


def stack_file(stack: str, folder: Path = STACKS) -> dict:
    """The `config:` of stacks/Pulumi.<stack>.yaml, or a ConfigError saying what is wrong with the file."""
    path, where = folder / f"Pulumi.{stack}.yaml", f"stacks/Pulumi.{stack}.yaml"
    if not path.is_file():
        raise ConfigError([f"{where}: no such stack file"])
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError([f"{where}: not YAML{at}: {getattr(exc, 'problem', None) or exc}"]) from None
    if not isinstance(data, dict) or "config" not in data:
        raise ConfigError([f"{where}: no `config:` section (it holds the stack's rayplane:* keys)"])
    config = data["config"]
    if not isinstance(config, dict) or not config:
        raise ConfigError([f"{where}: `config:` is empty (it holds the stack's rayplane:* keys)"])
    if errors := plain_secrets(config.get(f"{NAMESPACE}:secrets")):
        raise ConfigError(errors)
    return config


def plain_secrets(secrets) -> list[str]:
    """Values of rayplane:secrets stored in plain text. Pulumi marks the whole map secret when one
    value in it is `secure:`, so only the stack file itself shows a plain one sitting next to them."""
    if not isinstance(secrets, dict):
        return []
    return [
        f"secrets.{key}: stored in plain text in the stack file; set it with"
        f" `pulumi config set --secret --path 'secrets.{key}' <value>`"
        for key, value in secrets.items()
        if not (isinstance(value, dict) and set(value) == {"secure"})
    ]


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
    if (STACKS / f"Pulumi.{pulumi.get_stack()}.yaml").is_file():  # config may also come from elsewhere (ESC)
        stack_file(pulumi.get_stack())
    return from_pulumi_config(everything, secret_keys)
