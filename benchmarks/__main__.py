"""Every benchmark, one after another, each in its own process (each starts and stops its own Ray
or servers): build/bench/<name>.json, and every ratio on one line per benchmark.

    python -m benchmarks [--smoke] [NAME ...]     # make bench
"""

import argparse
import subprocess
import sys
import time

BENCHMARKS = ("render", "compose", "embeddings", "batch", "llm", "traffic", "coldstart")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("names", nargs="*", help=f"some of {', '.join(BENCHMARKS)} (default: all)")
    parser.add_argument("--smoke", action="store_true", help="the smallest run of each (tests)")
    args = parser.parse_args(argv)
    if unknown := sorted(set(args.names) - set(BENCHMARKS)):
        parser.error(f"no benchmark {', '.join(unknown)} ({', '.join(BENCHMARKS)})")
    failed = []
    for name in args.names or BENCHMARKS:
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", *(["--smoke"] if args.smoke else [])])
        print(f"  ({name}: {time.monotonic() - started:.0f}s)", flush=True)
        if done.returncode != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
