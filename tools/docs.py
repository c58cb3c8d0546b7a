"""The reference tables in docs/, generated from the models and tables they describe, so that they
cannot drift: `make docs` rewrites them, `python -m tools.docs --check` (and a test) fails on drift.

A generated section sits between `<!-- generated: NAME -->` and `<!-- end: NAME -->`, in any
Markdown file of docs/, each section once:
    platform-config   every key of a platform stack (components/config/platform.py)
    team-config       every key of a team stack (components/config/team.py)
    platform-exports  what a platform stack exports to its teams (components/contract.py)
    payloads          every payload of workloads/catalog.py and its args (workloads/config.py)
    capacity-facts    the GPUs' memory and bandwidth (components/gpu.py), the model presets
                      (workloads/facts.py) and the built-in prices (components/pricing.py)
    versions          every pinned version (components/versions.py)
and whole files: images/ray/requirements.txt (components/image.py).
"""

import argparse
import ipaddress
import json
import re
import sys
import types
from collections import Counter
from typing import Annotated, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from components import ci, coldstart, image, pricing, versions
from components.bootstrap_identity import SECRET_READER
from components.config import BootstrapStack, PlatformStack, TeamStack
from components.contract import PlatformExports
from components.gpu import ACCELERATORS
from tools import changed
from tools.render import ROOT
from workloads import catalog
from workloads.config import Args
from workloads.facts import PRESETS

DOCS = ROOT / "docs"
SECTION = re.compile(r"(<!-- generated: (?P<name>[\w-]+) -->\n).*?(<!-- end: (?P=name) -->)", re.S)
HEADER = "| key | type | default | meaning |\n|---|---|---|---|\n"


def _models(annotation) -> tuple[type[BaseModel] | None, str]:
    """(the model inside an annotation, the key suffix that reaches it: "", "[]" or ".<name>")."""
    origin, args = get_origin(annotation), get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, ""
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _models(inner[0]) if len(inner) == 1 else (None, "")
    if origin is list:
        model, _ = _models(args[0])
        return model, "[]"
    if origin is dict:
        model, _ = _models(args[1])
        return model, ".<name>"
    return None, ""


def _type(annotation) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _type(args[0])
    if origin is Literal:
        return " or ".join(f"`{a}`" if a else '`""`' for a in args)
    if origin in (Union, types.UnionType):
        return " or ".join(_type(a) for a in args if a is not type(None))
    if origin is list:
        return f"list of {_type(args[0])}"
    if origin is dict or annotation is dict:
        return f"map of {_type(args[1])}" if args else "map"
    if annotation is ipaddress.IPv4Network:
        return "IPv4 CIDR"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object"
    return getattr(annotation, "__name__", str(annotation))


BOUNDS = {annotated_types.Ge: "≥", annotated_types.Gt: ">", annotated_types.Le: "≤", annotated_types.Lt: "<"}


def _bounds(field: FieldInfo) -> str:
    marks = []
    for item in field.metadata:
        for kind, sign in BOUNDS.items():
            if isinstance(item, kind):
                marks.append(f"{sign} {getattr(item, kind.__name__.lower())}")
        if isinstance(item, annotated_types.MinLen):
            marks.append(f"at least {item.min_length}")
    return f" ({', '.join(marks)})" if marks else ""


def _default(value) -> str:
    if value is PydanticUndefined:
        return "required"
    if value is None or isinstance(value, BaseModel):
        return ""
    if isinstance(value, ipaddress.IPv4Network | str):
        return f"`{value}`" if str(value) else '`""`'
    return f"`{json.dumps(value)}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def rows(model: type[BaseModel], prefix: str = "", defaults: BaseModel | None = None) -> list[str]:
    """One table row per field, nested models' fields after their own row (key paths as in YAML)."""
    lines = []
    for name, field in model.model_fields.items():
        if field.exclude:  # not in what the model writes (an export's)
            continue
        key = f"{prefix}{field.alias or name}"
        default = getattr(defaults, name) if defaults is not None else field.default
        inner, suffix = _models(field.annotation)
        cells = [f"`{key}`", _type(field.annotation) + _bounds(field), _default(default), field.description or ""]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        if inner is not None and not issubclass(inner, Args):  # a payload's args: its own table (payloads)
            nested_defaults = default if isinstance(default, BaseModel) and not suffix else None
            lines += rows(inner, f"{key}{suffix}.", nested_defaults)
    return lines


def table(model: type[BaseModel], prefix: str = "") -> str:
    return HEADER + "\n".join(rows(model, prefix)) + "\n"


def payloads() -> str:
    out = ["| payload | kind | runs | what |", "|---|---|---|---|"]
    entries = [(n, "service", p.import_path, p) for n, p in catalog.SERVICES.items()]
    entries += [(n, "job", f"python -m {p.module}", p) for n, p in catalog.JOBS.items()]
    out += [f"| `{name}` | {kind} | `{runs}` | {_cell(p.summary)} |" for name, kind, runs, p in entries]
    for name, kind, _, payload in entries:
        doc = " ".join((payload.args.__doc__ or "").split())
        out += ["", f"**`{name}`** args (`{'services' if kind == 'service' else 'jobs'}[].args`): {doc}", ""]
        out.append(table(payload.args).rstrip("\n"))
    return "\n".join(out) + "\n"


def capacity_facts() -> str:
    out = ["| accelerator | Ray type | memory (GiB, as reported) | bandwidth (GB/s) |", "|---|---|---|---|"]
    out += [
        f"| `{name}` | {gpu.ray_type} | {gpu.memory_gib:.1f} | {gpu.bandwidth_gbps} |"
        for name, gpu in ACCELERATORS.items()
    ]
    out += ["", "| preset | parameters (B) | layers | KV heads | head dim | dtype | context |", "|---" * 7 + "|"]
    out += [
        f"| `{name}` | {f.params_b:g} | {f.layers} | {f.kv_heads} | {f.head_dim} | {f.dtype} | {f.max_position} |"
        for name, f in PRESETS.items()
    ]
    out += ["", f"Built-in prices: {_cell(pricing.ESTIMATE)}.", ""]
    out += ["| region | machine type or GPU | on-demand USD/h | Spot USD/h |", "|---|---|---|---|"]
    out += [
        f"| {region} | `{key}` | {price.on_demand:g} | {'' if price.spot is None else f'{price.spot:g}'} |"
        for region, prices in pricing.PRICES.items()
        for key, price in prices.items()
    ]
    return "\n".join(out) + "\n"


def versions_table() -> str:
    out = ["| what | version | used for |", "|---|---|---|"]
    out += [f"| `{name}` | {pin.version} | {_cell(pin.what)} |" for name, pin in versions.PINS.items()]
    out += ["", "| image | reference |", "|---|---|"]
    out += [
        f"| {what} | `{image}` |"
        for what, image in (
            ("Ray heads and workers (`rayImage`'s default)", versions.RAY_IMAGE),
            ("the KubeRay operator", versions.KUBERAY_OPERATOR_IMAGE),
            ("pause container of the NVIDIA driver installer", versions.PAUSE_IMAGE),
            ("NVIDIA driver installer (preloaded on GKE's COS GPU nodes)", versions.NVIDIA_INSTALLER_IMAGE),
        )
    ]
    return "\n".join(out) + "\n"


MANAGED = {
    "kubernetes": "every Kubernetes object (through the cluster's DNS endpoint)",
    "nodes": "node pools, which run as the nodes' service account",
}


def ci_identities() -> str:
    """Who CI acts as, for the shipped bootstrap stack (components/ci.py), and why each deploy role."""
    out = [
        "| service account | GitHub environment | tokens admitted from | its environment's project |"
        " state bucket | secrets key |",
        "|---|---|---|---|---|---|",
    ]
    config = changed.bootstrap()
    for i in ci.identities(config):
        roles = [f"`{r}`" for r in i.project_roles]
        if i.role == ci.PREVIEW:
            roles.append(f"a custom role: {', '.join(f'`{p}`' for p in SECRET_READER)}")
        origin = f"`{config.github.branch}` only" if i.from_main_only else "any branch or pull request"
        out.append(
            f"| `{i.account_id}` | `{i.environment}` | {origin} | {', '.join(roles)} |"
            f" `{i.state_role}` on `{ci.state_bucket(config, i.of)}` |"
            f" `{i.key_role}` on `{ci.key_name(config, i.of)}` |"
        )
    out += ["", "| deploy role | what `pulumi up` manages with it |", "|---|---|"]
    for role in sorted(set(ci.DEPLOY_ROLES.values())):
        managed = [MANAGED.get(what, f"`{what}`") for what, r in ci.DEPLOY_ROLES.items() if r == role]
        condition = " (conditioned: it may grant the nodes' roles only)" if role.endswith("projectIamAdmin") else ""
        out.append(f"| `{role}` | {', '.join(managed)}{condition} |")
    return "\n".join(out) + "\n"


def cold_start_figures() -> str:
    out = ["| figure | value | kind | source |", "|---|---|---|---|"]
    out += [
        f"| `{name}` | {f.value:.3g} {f.unit} | {f.kind} | {_cell(f.source)} |" for name, f in coldstart.FIGURES.items()
    ]
    return "\n".join(out) + "\n"


GENERATORS = {
    "bootstrap-config": lambda: table(BootstrapStack),
    "platform-config": lambda: table(PlatformStack),
    "team-config": lambda: table(TeamStack),
    "platform-exports": lambda: table(PlatformExports),
    "payloads": payloads,
    "capacity-facts": capacity_facts,
    "cold-start-figures": cold_start_figures,
    "versions": versions_table,
    "ci-identities": ci_identities,
}


def generate(text: str) -> str:
    """`text` with every generated section replaced by what the models say now."""

    def section(match: re.Match) -> str:
        return match.group(1) + GENERATORS[match.group("name")]() + match.group(3)

    return SECTION.sub(section, text)


# Whole files generated from the models: path -> its content.
FILES = {
    image.SOURCE / "requirements.txt": lambda: (
        "# `make docs` writes this from components/versions.py (components/image.py)\n" + image.requirements()
    ),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if docs/ is not what the models say")
    args = parser.parse_args(argv)
    current = {path: path.read_text() for path in sorted(DOCS.glob("*.md"))}
    files = {path: path.read_text() if path.exists() else "" for path in FILES}
    found = Counter(m.group("name") for text in current.values() for m in SECTION.finditer(text))
    problems = [f"docs/ lacks the generated section {name}" for name in GENERATORS if not found[name]]
    problems += [f"docs/ has the generated section {name} {n} times" for name, n in found.items() if n > 1]
    problems += [
        f"docs/ has a generated section {name} that tools/docs.py lacks" for name in found if name not in GENERATORS
    ]
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    wanted = {path: generate(text) for path, text in current.items()} | {path: FILES[path]() for path in files}
    stale = [path for path, text in (current | files).items() if wanted[path] != text]
    if args.check and stale:
        names = ", ".join(f"docs/{p.name}" if p.parent == DOCS else str(p.relative_to(ROOT)) for p in stale)
        print(f"generated tables or files out of date: {names}: run `make docs`", file=sys.stderr)
        return 1
    for path in stale:
        path.write_text(wanted[path])
    return 0


if __name__ == "__main__":
    sys.exit(main())
