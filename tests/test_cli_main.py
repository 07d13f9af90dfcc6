"""mycelium-shm as a whole: bad names everywhere, pass-through commands, entry points."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from test_cli_support import assert_one_error_line, run_cli

from mycelium_shm.cli import cmd_bench, main


@pytest.mark.parametrize(
    "argv",
    [
        ["ls", "bad/name"],
        ["stat", "bad/name"],
        ["tail", "bad/name"],
        ["rm", "bad/name"],
        ["gc", "bad/name"],
        ["stress", "--name", "bad/name"],
        ["stat", ".."],
        ["tail", "x" * 300],
    ],
)
def test_a_bad_name_is_one_error_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Every command taking a channel name rejects a bad one: status 2, one line."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert_one_error_line(captured.err, f"{argv[0]}: argument")
    assert captured.out == ""


def test_errors_in_a_child_process_have_no_traceback() -> None:
    """Through `python -m mycelium_shm`: a bad name and a missing channel."""
    done = run_cli("tail", "bad/name")
    assert done.returncode == 2
    assert_one_error_line(done.stderr, "contains '/'")
    done = run_cli("rm", "no-such-channel-cli-test")
    assert done.returncode == 1
    assert_one_error_line(done.stderr, "no channel named 'no-such-channel-cli-test'")


def test_no_command_and_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    """A missing or unknown subcommand is a usage error."""
    assert main([]) == 2
    assert_one_error_line(capsys.readouterr().err, "COMMAND is required")
    assert main(["frobnicate"]) == 2
    assert_one_error_line(capsys.readouterr().err, "invalid choice")


def test_codegen_dispatches_to_the_generator(capsys: pytest.CaptureFixture[str]) -> None:
    """`mycelium-shm codegen ...` is `python -m mycelium_shm.codegen ...`."""
    assert main(["codegen", "--list"]) == 0
    assert {"rust", "ocaml", "json"} <= set(capsys.readouterr().out.split())


def test_bench_passes_its_arguments_through(capfd: pytest.CaptureFixture[str]) -> None:
    """`mycelium-shm bench --help` runs `python -m bench --help` from the checkout."""
    assert main(["bench", "--help"]) == 0
    assert "python -m bench" in capfd.readouterr().out


def test_bench_without_the_suite(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without the bench package: one error line, status 1."""
    monkeypatch.setattr(cmd_bench, "find_bench", lambda: None)
    assert main(["bench"]) == 1
    assert_one_error_line(capsys.readouterr().err, "not importable")


def test_console_script() -> None:
    """The installed `mycelium-shm` script runs the same main."""
    script = shutil.which("mycelium-shm")
    if script is None:
        pytest.skip("the console script is not installed (pip install -e .)")
    done = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert done.stdout.startswith("mycelium-shm ")
