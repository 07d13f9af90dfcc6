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
    assert_one_error_line(capsys.readouterr().err, "not installed with the package", "make bench")


def test_console_script() -> None:
    """The installed `mycelium-shm` script runs the same main."""
    script = shutil.which("mycelium-shm")
    if script is None:
        pytest.skip("the console script is not installed (pip install -e .)")
    done = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert done.stdout.startswith("mycelium-shm ")


SUBCOMMANDS = ["ls", "stat", "tail", "unblock", "rm", "gc", "stress", "record", "replay"]


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_json_and_shows_defaults(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--help of each subcommand offers --json, and every option with a value shows
    its default."""
    assert main([command, "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--json" in text
    if command in ("stat", "tail", "stress", "record", "replay"):
        assert "(default" in text


def test_stress_help_shows_its_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stress", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for shown in ("(default: 4)", "(default: 10000)", "(default: mixed)", "default 16-256"):
        assert shown in text, text


def test_codegen_json(capsys: pytest.CaptureFixture[str]) -> None:
    """The pass-through codegen takes --json too."""
    assert main(["codegen", "--list", "--json"]) == 0
    import json

    assert {"rust", "ocaml", "json"} <= set(json.loads(capsys.readouterr().out)["languages"])


@pytest.mark.parametrize(
    "argv",
    [
        ["tail", "x", "--max-bytes", "-3"],
        ["tail", "x", "--count", "-1"],
        ["stat", "x", "--count", "-2"],
        ["stat", "x", "--interval", "-1"],
        ["stress", "--writers", "-1"],
        ["stress", "--frames", "-5"],
        ["stress", "--sizes", "-3"],
        ["stress", "--capacity", "-4096"],
        ["stress", "--stall-timeout", "-1"],
        ["record", "x", "-o", "f", "--count", "-1"],
        ["record", "x", "-o", "f", "--duration", "-2"],
        ["replay", "f", "--to", "x", "--speed", "-1"],
        ["replay", "f", "--to", "x", "--timeout", "-1"],
    ],
)
def test_negative_numbers_are_one_error_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A negative size, count or time is refused before anything runs: status 2, one line."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert_one_error_line(captured.err, "-")
    assert "negative" in captured.err or "at least 1" in captured.err or "positive" in captured.err
    assert captured.out == ""


def test_demo_refuses_negative_counts() -> None:
    """The demo's options too (argparse's usage error, not a traceback)."""
    import subprocess
    import sys

    from conftest import ROOT

    done = subprocess.run(
        [sys.executable, "-m", "mycelium_shm.demo", "--frames", "-5"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 2
    assert "must be at least 1" in done.stderr and "Traceback" not in done.stderr
