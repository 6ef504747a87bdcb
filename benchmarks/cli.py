"""Benchmark: whole ``reconciler`` processes, start-up included, as a CI job or a shell runs them.

Each figure is the median of ``--runs`` runs of a fresh process, as wall time and as CPU time (user +
system, which a machine busy with other work disturbs less); the command and its baseline run in turn
(A B A B ...) and ratios are taken pair by pair, so that a machine getting slower or faster moves both
alike. The verdicts are on wall time.

- ``reconciler --help`` and ``reconciler --version``: target under 0.12 s each (``python -c pass`` is
  shown for reference);
- ``reconciler validate`` of N configurations x M mappings against a process that only parses the same
  files with PyYAML's C loader: target <= 1.3x;
- ``reconciler plan`` with no changes (the same files, already applied to a local tenant) against the
  same parse process: target <= 1.6x.

The configurations are committed to a git repository, as in a CI checkout. Python's bytecode is
cached (in the temporary folder, ``PYTHONPYCACHEPREFIX``) by the warm-up runs, as ``pip install`` leaves
an installed package; ``--no-bytecode-cache`` runs the processes with the environment as it is (where
``PYTHONDONTWRITEBYTECODE`` is set, every process then compiles the package's modules again).

    python -m benchmarks.cli [--configs 1000] [--mappings 60] [--runs 7] [--no-bytecode-cache]

Writes only to a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.testing.corpus import GIT_ENV, write_corpus

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


@dataclass
class Times:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # user + system of the process and what it waited for


def _run(argv: list[str], cwd: Path, env: dict[str, str], into: Times | None) -> None:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace")[-500:]
        raise SystemExit(f"{argv[:3]} exited {done.returncode}: {tail}")
    if into is not None:
        into.wall.append(wall)
        into.cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)


def _paired(
    a: list[str], b: list[str] | None, runs: int, cwd: Path, env: dict[str, str]
) -> tuple[Times, Times]:
    """Every run of A and B (alternating), after one warm-up run of each."""
    times_a, times_b = Times(), Times()
    for argv in (a, b):
        if argv:
            _run(argv, cwd, env, None)
    for _ in range(runs):
        _run(a, cwd, env, times_a)
        if b:
            _run(b, cwd, env, times_b)
    return times_a, times_b


def _ratio(a: list[float], b: list[float]) -> float:
    """The median of the per-pair ratios (pairing keeps a ratio meaningful while the speed drifts)."""
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def _load() -> str:
    """The machine's load averages (1, 5, 15 minutes): other work moves wall times, and ratios less."""
    return "load average " + ", ".join(f"{x:.1f}" for x in os.getloadavg())


def _verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


def _start_up(name: str, times: Times) -> None:
    wall, cpu = statistics.median(times.wall), statistics.median(times.cpu)
    verdict = _verdict(wall < START_TARGET)
    print(f"{name:<30} wall {wall:.3f}s  cpu {cpu:.3f}s  (target < {START_TARGET}s) {verdict}")


def _against_parse(name: str, times: Times, parse: Times, target: float) -> None:
    wall, cpu = _ratio(times.wall, parse.wall), _ratio(times.cpu, parse.cpu)
    print(
        f"{name:<30} wall {statistics.median(times.wall):.3f}s vs {statistics.median(parse.wall):.3f}s: "
        f"{wall:.2f}x; cpu {cpu:.2f}x  (target <= {target}x) {_verdict(wall <= target)}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--configs", type=int, default=1000)
    parser.add_argument("--mappings", type=int, default=60)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="run the processes with the environment as it is, without a bytecode cache of their own",
    )
    args = parser.parse_args(argv)
    cli = _reconciler()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = {**os.environ, **GIT_ENV, "RECONCILER_STATE_DIR": str(root / "state"), "NO_COLOR": "1"}
        env.pop("RECONCILER_TARGET", None)
        if not args.no_bytecode_cache:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
        folder = root / "configs"
        paths = write_corpus(folder, args.configs, args.mappings)
        for git_args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "corpus"]):
            subprocess.run(["git", *git_args], cwd=root, env=env, check=True)
        target = f"local:{root / 'tenant.db'}"
        subprocess.run(
            [*cli, "apply", "configs", "--target", target, "--auto-approve", "--quiet"],
            cwd=root,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        parse = [sys.executable, "-c", _PARSE, *(str(p.relative_to(root)) for p in paths)]

        cached = "not cached" if args.no_bytecode_cache else "cached by the warm-up runs (as installed)"
        print(f"medians of {args.runs} runs of each process; bytecode {cached}; {_load()}")
        bare, _ = _paired([sys.executable, "-c", "pass"], None, args.runs, root, env)
        wall, cpu = statistics.median(bare.wall), statistics.median(bare.cpu)
        print(f"{'python -c pass':<30} wall {wall:.3f}s  cpu {cpu:.3f}s")
        for flag in ("--help", "--version"):
            _start_up(f"reconciler {flag}", _paired([*cli, flag], None, args.runs, root, env)[0])
        print(f"configurations: {args.configs} x {args.mappings} mappings, against a C-loader parse process")
        validate, parsed = _paired([*cli, "validate", "configs"], parse, args.runs, root, env)
        _against_parse("reconciler validate", validate, parsed, VALIDATE_TARGET)
        plan_argv = [*cli, "plan", "configs", "--target", target, "--detailed-exitcode"]
        plan, parsed = _paired(plan_argv, parse, args.runs, root, env)
        _against_parse("reconciler plan (no changes)", plan, parsed, PLAN_TARGET)
        print(f"at the end: {_load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
