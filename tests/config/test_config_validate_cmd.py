"""``reconciler validate``: exit codes, the summary line, text and JSON diagnostics."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from support.config import CONTOSO, MakeDir

from reconciler.cli.errors import error_handler
from reconciler.cli.validate_cmd import validate
from reconciler.errors import LoadError

BROKEN = CONTOSO.replace("  domain: contoso.com\n", "  domain: contoso.com\n  enabeld: true\n")
UNMATCHED = """\
apiVersion: cloudsync/v1
kind: AttributeMappings
metadata: {name: gold}
spec:
  selector: {matchLabels: {tier: gold}}
  object: user
  mappings: [{target: title, source: title}]
"""


def test_valid_files_exit_0_with_a_summary(make_config_dir: MakeDir) -> None:
    make_config_dir({"a.yaml": CONTOSO, "b.yaml": UNMATCHED})
    result = CliRunner().invoke(validate, [])
    assert result.exit_code == 0, result.output
    assert result.stdout == "1 configuration valid (2 files)\n"
    assert result.stderr == "b.yaml:5:3: warning: selector matches no configuration\n"


def test_paths_are_arguments(make_config_dir: MakeDir) -> None:
    make_config_dir({"one/a.yaml": CONTOSO, "two/b.yaml": CONTOSO.replace("contoso", "other")})
    result = CliRunner().invoke(validate, ["one", "two"])
    assert (result.exit_code, result.stdout) == (0, "2 configurations valid (2 files)\n")


def test_problems_raise_load_error_for_the_central_handler(make_config_dir: MakeDir) -> None:
    make_config_dir({"a.yaml": BROKEN})
    result = CliRunner().invoke(validate, [])
    assert result.exit_code == 1
    assert isinstance(result.exception, LoadError)
    assert str(result.exception) == "a.yaml:8:3: unknown field 'enabeld' in spec; did you mean 'enabled'?"


def test_the_central_handler_prints_them_and_exits_1_without_traceback(
    make_config_dir: MakeDir, capsys: pytest.CaptureFixture[str]
) -> None:
    make_config_dir({"a.yaml": BROKEN})
    with pytest.raises(SystemExit) as info, error_handler():
        validate.main([], standalone_mode=False)
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert "a.yaml:8:3: unknown field 'enabeld' in spec; did you mean 'enabled'?\n" in err
    assert "Traceback" not in err


def test_json_format_when_invalid(make_config_dir: MakeDir) -> None:
    make_config_dir({"a.yaml": BROKEN, "b.yaml": UNMATCHED})
    result = CliRunner().invoke(validate, ["--format", "json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "valid": False,
        "diagnostics": [
            {
                "file": "a.yaml",
                "line": 8,
                "col": 3,
                "severity": "error",
                "message": "unknown field 'enabeld' in spec; did you mean 'enabled'?",
            },
            {
                "file": "b.yaml",
                "line": 5,
                "col": 3,
                "severity": "warning",
                "message": "selector matches no configuration",
            },
        ],
    }


def test_json_format_when_valid(make_config_dir: MakeDir) -> None:
    make_config_dir({"a.yaml": CONTOSO})
    result = CliRunner().invoke(validate, ["--format", "json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"valid": True, "diagnostics": []}
