"""Benchmark: ``reconciler validate`` (load_paths) over N configurations of M mappings each.

The baseline, measured in the same run on the same files, is PyYAML's C loader parsing them and nothing
else. Target: validating within 1.5x of that parse. Both are timed best of ``--repeat`` runs.

    python -m benchmarks.validate [--configs 1000] [--mappings 60] [--repeat 3]

Writes only to a temporary folder.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from reconciler.config.load import load_paths
from reconciler.testing.corpus import write_corpus

TARGET = 1.5


def timed(run: Callable[[], object]) -> float:
    began = time.perf_counter()
    run()
    return time.perf_counter() - began


def parse_only(paths: list[Path]) -> None:
    for path in paths:
        with open(path, "rb") as fh:
            list(yaml.load_all(fh.read(), Loader=yaml.CSafeLoader))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--configs", type=int, default=1000)
    parser.add_argument("--mappings", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "configs"
        paths = write_corpus(folder, args.configs, args.mappings)
        loaded = load_paths([str(folder)])
        assert len(loaded.state.configurations) == args.configs and not loaded.warnings
        # Nothing large stays alive while timing: the garbage collector would walk it in both runs.
        del loaded
        size = sum(p.stat().st_size for p in paths)
        # Alternate the two so that neither always runs on a warmer cache.
        parse = validate = float("inf")
        for _ in range(args.repeat):
            parse = min(parse, timed(lambda: parse_only(paths)))
            validate = min(validate, timed(lambda: load_paths([str(folder)])))
        ratio = validate / parse
        print(f"configurations: {args.configs} x {args.mappings} mappings ({size / 2**20:.1f} MiB of YAML)")
        print(f"baseline, C loader parse only: {parse:.3f}s")
        print(f"validate (load_paths):         {validate:.3f}s")
        verdict = "OK" if ratio <= TARGET else "MISSED"
        print(f"ratio validate / parse:        {ratio:.2f}x (target <= {TARGET}x) {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
