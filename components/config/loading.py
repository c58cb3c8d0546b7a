"""Reading a stack's config: every `rayplane:*` key from Pulumi's config, parsed by the stack's
`kind` into one model tree before any resource is registered."""

import base64
import binascii
import json
import re
from pathlib import Path

import pulumi
import yaml
from pulumi.runtime import config as runtime_config
from pydantic import ValidationError

from components.config.base import ConfigError, error_lines
from components.config.bootstrap import BootstrapStack
from components.config.platform import PlatformStack
from components.config.team import TeamStack

NAMESPACE = "rayplane"  # the config namespace: `rayplane:<key>` in stack files
STACKS = Path(__file__).resolve().parents[2] / "stacks"  # Pulumi.yaml: stackConfigDir
StackConfig = BootstrapStack | PlatformStack | TeamStack
STACK_KINDS: dict[str, type[StackConfig]] = {"bootstrap": BootstrapStack, "platform": PlatformStack, "team": TeamStack}


def parse(raw: dict) -> StackConfig:
    """Validate a raw config dict (keys as in the stack file, without the `rayplane:` prefix)."""
    kind = raw.get("kind")
    model = STACK_KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise ConfigError([f"kind: must be one of {', '.join(STACK_KINDS)}, got {raw.get('kind')!r}"])
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(error_lines(exc)) from None


def _value(raw: str):
    # Pulumi hands structured config values over as JSON text; scalars stay strings.
    return json.loads(raw) if raw.startswith(("{", "[")) else raw


class DuplicateKey(yaml.MarkedYAMLError):
    """A key given twice in one mapping."""


class StackFileLoader(yaml.SafeLoader):
    """YAML as Pulumi reads a stack file: a key given twice in one mapping is an error (Go's yaml.v3,
    "mapping key already defined"), where PyYAML would silently keep the last one."""

    def construct_mapping(self, node, deep=False):
        first: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str | int | float | bool) and key in first:
                raise DuplicateKey(
                    problem=f"key {key!r} given twice (first at line {first[key] + 1})",
                    problem_mark=key_node.start_mark,
                )
            first.setdefault(key, key_node.start_mark.line)
        return super().construct_mapping(node, deep)


def _known(key: str) -> bool:
    """A stack file key the program reads: rayplane's (`rayplane:x`, or bare as Pulumi reads it) or gcp:project."""
    return key == "gcp:project" or key.startswith(f"{NAMESPACE}:") or ":" not in key


def stack_file(stack: str, folder: Path = STACKS) -> dict:
    """The `config:` of stacks/Pulumi.<stack>.yaml, or a ConfigError saying what is wrong with the file."""
    path, where = folder / f"Pulumi.{stack}.yaml", f"stacks/Pulumi.{stack}.yaml"
    if not path.is_file():
        raise ConfigError([f"{where}: no such stack file"])
    try:
        data = yaml.load(path.read_text(), Loader=StackFileLoader)
    except DuplicateKey as exc:
        raise ConfigError([f"{where}: line {exc.problem_mark.line + 1}: {exc.problem}; Pulumi refuses it"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError([f"{where}: not YAML{at}: {getattr(exc, 'problem', None) or exc}"]) from None
    if not isinstance(data, dict) or "config" not in data:
        raise ConfigError([f"{where}: no `config:` section (it holds the stack's rayplane:* keys)"])
    config = data["config"]
    if not isinstance(config, dict) or not config:
        raise ConfigError([f"{where}: `config:` is empty (it holds the stack's rayplane:* keys)"])
    if unknown := [key for key in config if not isinstance(key, str) or not _known(key)]:
        raise ConfigError(
            [f"{key}: not a key rayplane reads (only {NAMESPACE}:<key> and gcp:project); a typo?" for key in unknown]
        )
    errors = [e for key, value in config.items() for e in not_ciphertext(value, key.removeprefix(f"{NAMESPACE}:"))]
    if errors := errors + plain_secrets(config.get(f"{NAMESPACE}:secrets")):
        raise ConfigError(errors)
    return config


def _ciphertext(value) -> bool:
    """Whether a `secure:` value looks like what Pulumi writes: base64, or `v1:` and base64 parts
    (the passphrase provider's nonce and ciphertext), holding at least AES-GCM's 16-byte tag."""
    if not isinstance(value, str) or not value:
        return False
    try:
        parts = [base64.b64decode(part, validate=True) for part in value.removeprefix("v1:").split(":")]
    except (binascii.Error, ValueError):
        return False
    return sum(map(len, parts)) >= 16


def _nodes(value, path: str):
    """`value` and every value under it, each with its key path (`team.readBuckets[0]`)."""
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _nodes(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _nodes(item, f"{path}[{i}]")


def not_ciphertext(value, path: str) -> list[str]:
    """Every `secure:` value under `value` (at key `path`) that holds no ciphertext: a token pasted
    in plain text where Pulumi expects what `pulumi config set --secret` writes."""
    return [
        f"{where}: `secure:` holds no Pulumi ciphertext; set it with `pulumi config set --secret`"
        for where, node in _nodes(value, path)
        if isinstance(node, dict) and set(node) == {"secure"} and not _ciphertext(node["secure"])
    ]


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


# What credentials look like: a URL with user:password, Hugging Face, AWS, GitHub and OpenAI-style
# tokens, Google OAuth access tokens, private keys.
CREDENTIAL = re.compile(
    r"://[^/\s:@]+:[^/\s@]+@|\bhf_[A-Za-z0-9]{20,}|\bAKIA[0-9A-Z]{16}\b|\bgh[pousr]_[A-Za-z0-9]{20,}"
    r"|\bsk-[A-Za-z0-9_-]{20,}|\bya29\.[\w-]+|-----BEGIN [A-Z ]*PRIVATE KEY-----"
)
CREDENTIAL_FOUND = (
    "looks like a credential; stack config is plain text (in the repository, previews and the rendered objects):"
    " keep it in rayplane:secrets and pass it with secretEnv"
)


def credentials(value, path: str) -> list[str]:
    """An error for every key or string under `value` (at `path`) that looks like a credential."""
    errors = []
    for where, node in _nodes(value, path):
        if isinstance(node, dict):
            errors += [f"{where}: a key {CREDENTIAL_FOUND}" for key in node if CREDENTIAL.search(str(key))]
        elif isinstance(node, str) and CREDENTIAL.search(node):
            errors.append(f"{where}: {CREDENTIAL_FOUND}")
    return errors


def from_pulumi_config(everything: dict[str, str], secret_keys: set[str]) -> StackConfig:
    """The stack config from Pulumi's config map (full keys, JSON text values)."""
    raw = {k.removeprefix(f"{NAMESPACE}:"): _value(v) for k, v in everything.items() if k.startswith(f"{NAMESPACE}:")}
    if "gcp:project" in everything:
        raw["gcp:project"] = everything["gcp:project"]
    if "secrets" in raw and f"{NAMESPACE}:secrets" not in secret_keys:
        raise ConfigError(["secrets: set these with `pulumi config set --secret --path 'secrets.<name>'`"])
    plain = {key: value for key, value in raw.items() if f"{NAMESPACE}:{key}" not in secret_keys and key != "secrets"}
    if isinstance(secrets := raw.get("secrets"), dict):
        plain["secrets"] = dict.fromkeys(secrets)  # its names are plain text too
    if errors := [e for key, value in plain.items() for e in credentials(value, key)]:
        raise ConfigError(errors)
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
