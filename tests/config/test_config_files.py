"""Finding and reading files: walk order, hidden entries, size, UTF-8, symbolic links, missing paths."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from support.config import CONTOSO, MakeDir

from reconciler.config.files import MAX_FILE_BYTES, SourceFile, check_source, collect_files
from reconciler.config.load import load_files

Problems = Callable[[dict[str, str | bytes]], list[str]]


def test_walks_yaml_and_yml_files_in_sorted_order_and_skips_the_rest(make_config_dir: MakeDir) -> None:
    make_config_dir(
        {
            "b.yml": "x: 1\n",
            "a.yaml": "x: 1\n",
            "sub/c.yaml": "x: 1\n",
            "notes.txt": "not read\n",
            ".hidden.yaml": "x: 1\n",
            ".github/workflows/ci.yml": "on: push\n",
        }
    )
    files, problems = collect_files(["."])
    assert [f.path for f in files] == ["a.yaml", "b.yml", os.path.join("sub", "c.yaml")]
    assert problems == []


def test_a_file_given_by_name_is_read_whatever_its_name(make_config_dir: MakeDir) -> None:
    make_config_dir({"contoso.conf": CONTOSO})
    files, problems = collect_files(["contoso.conf"])
    assert [f.path for f in files] == ["contoso.conf"] and problems == []


def test_the_same_file_reached_twice_is_read_once(make_config_dir: MakeDir) -> None:
    root = make_config_dir({"a.yaml": CONTOSO})
    os.symlink(root / "a.yaml", root / "b.yaml")
    files, problems = collect_files([".", "a.yaml"])
    assert [f.path for f in files] == ["a.yaml"] and problems == []


def test_a_missing_path_is_an_error(make_config_dir: MakeDir) -> None:
    make_config_dir({})
    files, problems = collect_files(["nope"])
    assert files == [] and [str(p) for p in problems] == ["nope:1:1: no such file or folder"]


def test_a_folder_without_yaml_files_is_a_warning(make_config_dir: MakeDir) -> None:
    make_config_dir({"empty/readme.md": "nothing\n"})
    _, problems = collect_files(["empty"])
    assert [str(p) for p in problems] == ["empty:1:1: warning: no .yaml or .yml files here"]


def test_a_file_over_the_size_limit_is_refused_unread(problems: Problems) -> None:
    big = "# " + "x" * MAX_FILE_BYTES + "\n"
    assert problems({"big.yaml": big}) == [
        f"big.yaml:1:1: file is {len(big)} bytes, too large; the limit is {MAX_FILE_BYTES}"
    ]


def test_a_file_that_is_not_utf8_is_refused_at_the_bad_byte(problems: Problems) -> None:
    data = b"apiVersion: cloudsync/v1\nkind: Conf\xffiguration\n"
    assert problems({"latin.yaml": data}) == ["latin.yaml:2:11: file is not UTF-8 text (byte 0xff)"]


def test_utf16_is_not_utf8(problems: Problems) -> None:
    data = "kind: Configuration\n".encode("utf-16")
    assert problems({"wide.yaml": data}) == ["wide.yaml:1:1: file is not UTF-8 text (byte 0xff)"]


def test_check_source_applies_to_files_from_anywhere() -> None:
    assert check_source(SourceFile("x.yaml", b"a: 1\n")) is None
    big = check_source(SourceFile("x.yaml", b" " * (MAX_FILE_BYTES + 1)))
    assert big is not None and big.message.startswith("file is 1048577 bytes")
    result = load_files([SourceFile("git:x.yaml", CONTOSO.encode())])
    assert [c.name for c in result.state.configurations] == ["contoso"]


def test_a_symlink_leading_outside_the_given_paths_is_refused(
    make_config_dir: MakeDir, tmp_path: Path
) -> None:
    root = make_config_dir({"configs/a.yaml": CONTOSO, "elsewhere/secret.yaml": "x: 1\n"})
    os.symlink(root / "elsewhere" / "secret.yaml", root / "configs" / "link.yaml")
    os.symlink(root / "elsewhere", root / "configs" / "linkdir")
    files, problems = collect_files(["configs"])
    assert [f.path for f in files] == [os.path.join("configs", "a.yaml")]
    target = os.path.realpath(root / "elsewhere")
    assert [str(p) for p in problems] == [
        f"{os.path.join('configs', 'link.yaml')}:1:1: symbolic link leads outside the given paths "
        f"(to {os.path.join(target, 'secret.yaml')})",
        f"{os.path.join('configs', 'linkdir')}:1:1: symbolic link leads outside the given paths "
        f"(to {target})",
    ]


def test_symlinks_inside_the_given_paths_are_followed(make_config_dir: MakeDir) -> None:
    root = make_config_dir({"configs/real/a.yaml": CONTOSO})
    os.symlink(root / "configs" / "real", root / "configs" / "alias")
    os.symlink(root / "configs", root / "configs" / "real" / "loop")
    files, problems = collect_files(["configs"])
    assert [f.path for f in files] == [os.path.join("configs", "alias", "a.yaml")]
    assert problems == []


def test_a_broken_symlink_is_reported(make_config_dir: MakeDir) -> None:
    root = make_config_dir({"a.yaml": CONTOSO})
    os.symlink(root / "gone.yaml", root / "b.yaml")
    _, problems = collect_files(["."])
    assert [str(p) for p in problems] == ["b.yaml:1:1: symbolic link leads nowhere"]
