"""Benchmark: whole ``reconciler`` processes, start-up included, as a CI job or a shell runs them.

Each figure is the median wall time of ``--runs`` runs of a fresh process; the command and its
baseline run in turn (A B A B ...) so that a machine getting slower or faster moves both alike.

- ``reconciler --help`` and ``reconciler --version``: target under 0.12 s each (``python -c pass`` is
  shown for reference);
- ``reconciler validate`` of N configurations x M mappings against a process that only parses the same
  files with PyYAML's C loader: target <= 1.3x;
- ``reconciler plan`` with no changes (the same files, already applied to a local tenant) against the
  same parse process: target <= 1.6x.

The configurations are committed to a git repository, as in a CI checkout.

    python -m benchmarks.cli [--configs 1000] [--mappings 60] [--runs 7]

Writes only to a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.corpus import GIT_ENV, write_corpus

START_TARGET = 0.12
VALIDATE_TARGET = 1.3
PLAN_TARGET = 1.6

_PARSE = """\
import sys, yaml
for path in sys.argv[1:]:
    with open(path, "rb") as fh:
        list(yaml.load_all(fh.read(), Loader=yaml.CSafeLoader))
"""


def _reconciler() -> list[str]:
    """The console script installed next to this interpreter (what users run), else ``-m reconciler``."""
    script = Path(sys.executable).with_name("reconciler")
    if script.exists():
        return [str(script)]
    found = shutil.which("reconciler")
    return [found] if found else [sys.executable, "-m", "reconciler"]


def _wall(argv: list[str], cwd: Path, env: dict[str, str], expect: int = 0) -> float:
    began = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seconds = time.perf_counter() - began
    if done.returncode != expect:
        tail = done.stderr.decode(errors="replace")[-500:]
        raise SystemExit(f"{argv[:3]} exited {done.returncode}: {tail}")
    return seconds


def _paired(
    a: list[str], b: list[str] | None, runs: int, cwd: Path, env: dict[str, str]
) -> tuple[float, float | None, float | None]:
    """Medians of A and B, and the median of the per-pair ratios A/B; one warm-up run of each first."""
    _wall(a, cwd, env)
    if b:
        _wall(b, cwd, env)
    times_a: list[float] = []
    times_b: list[float] = []
    for _ in range(runs):
        times_a.append(_wall(a, cwd, env))
        if b:
            times_b.append(_wall(b, cwd, env))
    if not b:
        return statistics.median(times_a), None, None
    ratios = [x / y for x, y in zip(times_a, times_b, strict=True)]
    return statistics.median(times_a), statistics.median(times_b), statistics.median(ratios)


def _verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--configs", type=int, default=1000)
    parser.add_argument("--mappings", type=int, default=60)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    cli = _reconciler()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = {**os.environ, **GIT_ENV, "RECONCILER_STATE_DIR": str(root / "state"), "NO_COLOR": "1"}
        env.pop("RECONCILER_TARGET", None)
        folder = root / "configs"
        paths = write_corpus(folder, args.configs, args.mappings)
        for git_args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "corpus"]):
            subprocess.run(["git", *git_args], cwd=root, env=env, check=True)
        target = f"local:{root / 'tenant.db'}"
        subprocess.run(
            [*cli, "apply", "configs", "--target", target, "--auto-approve"],
            cwd=root,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        parse = [sys.executable, "-c", _PARSE, *(str(p.relative_to(root)) for p in paths)]

        bare, _, _ = _paired([sys.executable, "-c", "pass"], None, args.runs, root, env)
        print(f"python -c pass:                    {bare:.3f}s")
        for flag in ("--help", "--version"):
            seconds, _, _ = _paired([*cli, flag], None, args.runs, root, env)
            label = f"reconciler {flag}:"
            print(f"{label:<34} {seconds:.3f}s (target < {START_TARGET}s) {_verdict(seconds < START_TARGET)}")

        print(f"configurations: {args.configs} x {args.mappings} mappings, medians of {args.runs} runs")
        validate, base, ratio = _paired([*cli, "validate", "configs"], parse, args.runs, root, env)
        assert base is not None and ratio is not None
        print(f"baseline, C loader parse process:  {base:.3f}s")
        print(f"reconciler validate:               {validate:.3f}s")
        print(
            f"ratio validate / parse:            {ratio:.2f}x (target <= {VALIDATE_TARGET}x) "
            f"{_verdict(ratio <= VALIDATE_TARGET)}"
        )
        plan_argv = [*cli, "plan", "configs", "--target", target, "--detailed-exitcode"]
        plan, base, ratio = _paired(plan_argv, parse, args.runs, root, env)
        assert base is not None and ratio is not None
        print(f"baseline, C loader parse process:  {base:.3f}s")
        print(f"reconciler plan (no changes):      {plan:.3f}s")
        print(
            f"ratio plan / parse:                {ratio:.2f}x (target <= {PLAN_TARGET}x) "
            f"{_verdict(ratio <= PLAN_TARGET)}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
