"""``python -m reconciler.emulator``: the ``reconciler emulator`` command on its own."""

from __future__ import annotations

from reconciler.cli.emulator_cmd import emulator

raise SystemExit(emulator.main(prog_name="python -m reconciler.emulator"))
