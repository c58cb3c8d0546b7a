"""Stack evaluation: the offline render (the whole program under Pulumi's mocks, as `pulumi up`
evaluates it) of a generated team stack with 1, 10 and 100 services on the dev platform: seconds
per resource, and how the 100-service render scales against the 10-service one (1.0: linear).

    python -m benchmarks.render [--smoke]
"""

import sys
import time

from benchmarks.common import interleave, median_of, parser, ratio, report
from components.config.loading import stack_file
from tools.render import STACKS, pulumi_config, render, stacks_with


def team(services: int) -> dict:
    """A team stack on the dev platform with `services` embeddings services."""
    return {
        "gcp:project": "rayplane-dev",
        "rayplane:kind": "team",
        "rayplane:platformStack": "organization/rayplane/dev",
        "rayplane:team": {"name": "bench", "gpuProfiles": ["l4-shared"], "quota": quota(services)},
        "rayplane:services": [
            {
                "name": f"embed{i}",
                "payload": "embeddings",
                "args": {"num_gpus": 0.5, "autoscaling": {"min_replicas": 0, "max_replicas": 2}},
                "workers": {"gpuProfile": "l4-shared", "replicas": {"min": 0, "max": 1}},
            }
            for i in range(services)
        ],
    }


def quota(services: int) -> dict:
    return {"gpus": 4 * services, "cpu": 8 * services, "memoryGib": 32 * services}


def dev_with_bench(most: int) -> dict:
    """The dev platform's config with the tenant `bench`, granted what `most` services need."""
    config = stack_file("dev", STACKS)
    tenant = {"name": "bench", "stacks": ["bench"], "gpuProfiles": ["l4-shared"], "quota": quota(most)}
    return {**config, "rayplane:tenants": [*config["rayplane:tenants"], tenant]}


def timed(services: int) -> dict:
    config = pulumi_config(team(services))
    started = time.perf_counter()
    result = render("bench", config)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "resources": len(result.resources), "s_per_resource": seconds / len(result.resources)}


def main(argv: list[str] | None = None) -> int:
    options = parser(__doc__).parse_args(argv)
    sizes, rounds = ([1, 2], 1) if options.smoke else ([1, 10, 100], 3)
    with stacks_with({"dev": dev_with_bench(max(sizes))}):
        timed(1)  # warm-up: imports
        measured = interleave(rounds, {f"services_{n}": (lambda n=n: timed(n)) for n in sizes})
    figures = {
        f"{name}_{key}": median_of(runs, key)
        for name, runs in measured.items()
        for key in ("seconds", "s_per_resource")
    }
    figures |= {f"{name}_resources": runs[0]["resources"] for name, runs in measured.items()}
    small, large = sizes[-2], sizes[-1]
    ratios = {
        f"per_resource_{large}_vs_{small}": ratio(
            figures[f"services_{large}_s_per_resource"], figures[f"services_{small}_s_per_resource"]
        ),
        f"seconds_{large}_vs_{small}": ratio(
            figures[f"services_{large}_seconds"], figures[f"services_{small}_seconds"]
        ),
    }
    result = {"ratios": ratios, "figures": figures, "setup": {"sizes": sizes, "rounds": rounds}}
    report("render", result, options.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
