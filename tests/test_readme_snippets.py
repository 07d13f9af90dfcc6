"""Every fenced code block of the READMEs is checked: the docs cannot rot.

The READMEs: README.md, bindings/rust/README.md, bindings/ocaml/README.md,
mycelium_shm/bus/README.md, bench/README.md and examples/*/README.md (the
READMEs under tests/ document test data and are not covered).

The rule: each fenced block is preceded (on the line before its fence) by an
HTML comment ``<!-- snippet: KIND [OPTION=VALUE ...] -->``, invisible when
the README is rendered.  A block without one fails the test, so every new
block gets an explicit decision.  KIND is one of:

``run`` (python)
    The block runs with the venv's Python in a subprocess (cwd: the
    checkout, timeout 60 s) and must exit 0.  Its stdout must equal, line by
    line, the trailing comments of its ``print(...)`` statement lines and the
    ``prints: TEXT`` of any comment, in order (``...`` in an expected line
    stands for any text, the rest is exact).  Then no channel it named
    may be left in /dev/shm, but those of ``keeps=`` (left by design).
``continues`` (python)
    Appended to the previous ``run`` block of the same README; they run
    together, as one program (the blocks build on each other).
``commands`` (sh)
    Not run (``make test`` and the benchmark are heavy): each command line is
    checked for what it names.  ``make T``: a target T of the Makefile;
    ``mycelium-shm ...`` / ``python -m mycelium_shm ...``: the subcommand and
    its options parse (the passthrough ``bench`` / ``codegen``: their options
    appear in their ``--help``); ``python -m MOD``: MOD is importable and the
    options named appear in its ``--help``; ``python FILE``, ``cargo ...
    --manifest-path FILE``, ``dune ... --root DIR``, ``cd DIR``: they exist;
    any other word that is a repository path (has a ``/`` or a file suffix)
    exists, except after ``-o``/``--out``.  A command with no rule fails.
``compile`` (rust)
    The block becomes the body of ``fn main() -> Result<(), Error>`` of a
    scratch crate depending on bindings/rust, which is built and run
    (``cargo run --offline``; skipped without cargo).  README blocks are not
    part of the crate's doc tests (its lib.rs has its own, run by
    ``cargo test``), so this is how they are compiled.
``api`` (ocaml)
    Not compiled (that needs the dune project's ctypes stubs built in the
    scratch place): every qualified name ``Module.name`` it uses must be
    declared in that module's interface (bindings/ocaml/src/*.mli,
    generated/*.mli, codec/*.mli).
``text``
    A diagram or sample output: not code, not checked.

Options: ``names=a,b`` rewrites the string literals "a" and "b" of the block
to channel names unique to this test run (the README keeps readable names),
all unlinked after the run;
``ports=N,M`` rewrites those numbers to free TCP ports; ``mypy`` also runs
``python -m mypy --strict`` on the (rewritten) program.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mycelium_shm import exists, unlink
from mycelium_shm.cli import PASSTHROUGH, build_parser, cmd_bench
from mycelium_shm.cli._common import CliError

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable  # the venv's (make test-py runs pytest with it)

READMES = sorted(
    {
        ROOT / "README.md",
        ROOT / "bindings" / "rust" / "README.md",
        ROOT / "bindings" / "ocaml" / "README.md",
        ROOT / "mycelium_shm" / "bus" / "README.md",
        ROOT / "bench" / "README.md",
        *ROOT.glob("examples/*/README.md"),
    }
)

KINDS = {"run", "continues", "commands", "compile", "api", "text"}
MARKER = re.compile(r"^<!--\s*snippet:\s*(\S+)((?:\s+[^\s>]+)*)\s*-->\s*$")
FENCE = re.compile(r"^(`{3,})\s*([\w+-]*)\s*$")


@dataclass
class Block:
    readme: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    kind: str = ""
    options: dict[str, str] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{self.readme.relative_to(ROOT)}:{self.line}"


def parse_blocks(readme: Path) -> list[Block]:
    """The fenced blocks of a README, each with the marker just above it."""
    lines = readme.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang = m.group(1), m.group(2)
        end = i + 1
        while end < len(lines) and lines[end].strip() != fence:
            end += 1
        block = Block(readme, i + 1, lang, "\n".join(lines[i + 1 : end]) + "\n")
        prev = lines[i - 1] if i > 0 else ""
        mk = MARKER.match(prev.strip())
        if mk:
            block.kind = mk.group(1)
            for word in mk.group(2).split():
                key, _, value = word.partition("=")
                block.options[key] = value
        blocks.append(block)
        i = end + 1
    return blocks


ALL_BLOCKS = [b for readme in READMES for b in parse_blocks(readme)]


def blocks_of(kind: str) -> list[Block]:
    return [b for b in ALL_BLOCKS if b.kind == kind]


def unique_names(block: Block, run_id: str) -> dict[str, str]:
    names = [n for n in block.options.get("names", "").split(",") if n]
    return {n: f"readme-{run_id}-{n}" for n in names}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rewrite(code: str, names: dict[str, str], ports: list[str]) -> str:
    for old, new in names.items():
        code = re.sub(
            rf"([\"']){re.escape(old)}\1", lambda m, n=new: f"{m.group(1)}{n}{m.group(1)}", code
        )
    for port in ports:
        code = re.sub(rf"\b{re.escape(port)}\b", str(free_port()), code)
    return code


def test_every_block_is_marked() -> None:
    assert len(READMES) >= 6
    bad = [f"{b.where} (```{b.lang})" for b in ALL_BLOCKS if b.kind not in KINDS]
    assert not bad, "blocks without a valid <!-- snippet: KIND --> marker: " + ", ".join(bad)
    langs = {
        "run": {"python"},
        "continues": {"python"},
        "commands": {"sh"},
        "compile": {"rust"},
        "api": {"ocaml"},
    }
    wrong = [
        f"{b.where}: {b.kind} on ```{b.lang}"
        for b in ALL_BLOCKS
        if b.kind in langs and b.lang not in langs[b.kind]
    ]
    assert not wrong, wrong
    for b in blocks_of("continues"):
        earlier = [x for x in ALL_BLOCKS if x.readme == b.readme and x.line < b.line]
        assert any(x.kind == "run" for x in earlier), f"{b.where}: continues nothing"


# -- python: run ---------------------------------------------------------------


def python_groups() -> list[list[Block]]:
    groups: list[list[Block]] = []
    for b in ALL_BLOCKS:
        if b.kind == "run":
            groups.append([b])
        elif b.kind == "continues":
            for g in reversed(groups):
                if g[0].readme == b.readme:
                    g.append(b)
                    break
    return groups


PRINT_LINE = re.compile(r"^\s*print\(.*\)\s*#\s?(.*?)\s*$")
PRINTS = re.compile(r"#.*\bprints: (.*?)\s*$")


def expected_output(code: str) -> list[str]:
    out = []
    for line in code.splitlines():
        m = PRINT_LINE.match(line) or PRINTS.search(line)
        if m:
            out.append(m.group(1))
    return out


def matches(expected: str, actual: str) -> bool:
    """``...`` in an expected line stands for any text; the rest is exact."""
    pattern = ".*".join(map(re.escape, expected.split("...")))
    return re.fullmatch(pattern, actual) is not None


def test_expected_output_rule() -> None:
    code = "print(x)  # a b\nf(lambda: print(1))  # handler; prints: 1\nprint(y)\n"
    assert expected_output(code) == ["a b", "1"]
    assert matches("Frame(...", "Frame(type_id=1)") and not matches("a", "ab")
    assert matches("T(a=1, ...)", "T(a=1, b=2)") and not matches("T(a=1, ...)", "T(a=2, b=2)")


@pytest.mark.parametrize(
    "group", python_groups(), ids=lambda g: f"{g[0].readme.relative_to(ROOT)}:{g[0].line}"
)
def test_python_snippet(group: list[Block], tmp_path: Path) -> None:
    run_id = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    names: dict[str, str] = {}
    parts = []
    for b in group:
        block_names = unique_names(b, run_id)
        names.update(block_names)
        ports = [p for p in b.options.get("ports", "").split(",") if p]
        parts.append(rewrite(b.code, names, ports))
    program = "\n".join(parts)
    script = tmp_path / "snippet.py"
    script.write_text(program, encoding="utf-8")
    try:
        proc = subprocess.run(
            [PYTHON, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, f"{group[0].where} failed:\n{proc.stderr}"
        want = [line for b in group for line in expected_output(b.code)]
        got = proc.stdout.splitlines()
        assert len(got) == len(want) and all(map(matches, want, got)), (
            f"{group[0].where}: the comments say\n"
            + "\n".join(want)
            + "\nbut it printed\n"
            + proc.stdout
        )
        kept = {k for b in group for k in b.options.get("keeps", "").split(",") if k}
        left = [new for old, new in names.items() if old not in kept and exists(new)]
        assert not left, f"{group[0].where} leaves channels behind: {left}"
        if any("mypy" in b.options for b in group):
            check = subprocess.run(
                [PYTHON, "-m", "mypy", "--strict", "--no-incremental", str(script)],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert check.returncode == 0, f"{group[0].where}: mypy --strict\n{check.stdout}"
    finally:
        for n in names.values():
            unlink(n, missing_ok=True)


def test_first_snippet_covers_the_api() -> None:
    """The first Python snippet of README.md shows every way in and out, with timeouts."""
    first = next(b for b in ALL_BLOCKS if b.readme == ROOT / "README.md" and b.lang == "python")
    assert first.kind == "run" and "mypy" in first.options
    for call in (
        "write(",
        "read(",
        "write_many(",
        "read_many(",
        "reserve(",
        "read_view(",
        "unlink(",
    ):
        assert f".{call}" in first.code or f"\n{call}" in first.code, call
    for line in first.code.splitlines():
        if re.search(r"\.(write|read|write_many|read_many|reserve|read_view)\(", line):
            assert "timeout=" in line, f"a call without a timeout: {line.strip()}"
    # read_many runs before the zero-copy frame is written: it cannot take it.
    assert first.code.index("read_many(") < first.code.index("reserve(")


# -- sh: commands ----------------------------------------------------------------


def make_targets() -> set[str]:
    targets: set[str] = set()
    for line in (ROOT / "Makefile").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_ .$()/-]+?)\s*:(?!=)", line)
        if m and not line.startswith("\t"):
            targets.update(m.group(1).split())
    return targets


_HELP: dict[tuple[str, ...], str] = {}


def help_text(argv: tuple[str, ...]) -> str:
    if argv not in _HELP:
        proc = subprocess.run(
            [PYTHON, *argv, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, f"{' '.join(argv)} --help: {proc.stderr}"
        _HELP[argv] = proc.stdout
    return _HELP[argv]


def check_options(words: list[str], help_argv: tuple[str, ...], where: str) -> None:
    text = help_text(help_argv)
    for w in words:
        if w.startswith("-") and w not in ("-h", "--help"):
            opt = w.split("=", 1)[0]
            assert re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", text), (
                f"{where}: {' '.join(help_argv)} has no option {opt}"
            )


def looks_like_path(word: str) -> bool:
    if word.startswith("-") or "<" in word or "..." in word or "*" in word or "=" in word:
        return False
    return "/" in word or bool(re.search(r"\.(py|toml|sh|md|json|txt|c|h|rs|ml)$", word))


def check_paths(words: list[str], cwd: Path, where: str) -> None:
    skip_next = False
    for w in words:
        if skip_next:
            skip_next = False
            continue
        if w in ("-o", "--out"):
            skip_next = True
            continue
        if looks_like_path(w):
            assert (cwd / w).exists(), f"{where}: {w} does not exist"


def check_cli(args: list[str], where: str) -> None:
    assert args, f"{where}: no subcommand"
    if args[0] in PASSTHROUGH:
        check_options(args[1:], ("-m", "mycelium_shm", args[0]), where)
        check_paths(args[1:], ROOT, where)
        return
    try:
        build_parser().parse_args(args)
    except (CliError, SystemExit) as exc:
        raise AssertionError(f"{where}: mycelium-shm {' '.join(args)}: {exc}") from exc


def check_command(words: list[str], cwd: Path, where: str) -> Path:
    """Check one command line; the working directory for the next one."""
    if words[0] == "sudo":
        words = words[1:]
    cmd, args = words[0], words[1:]
    if cmd == "cd":
        new = (cwd / args[0]).resolve()
        assert new.is_dir(), f"{where}: no directory {args[0]}"
        return new
    if cmd == "make":
        missing = [
            t for t in args if not t.startswith("-") and "=" not in t and t not in make_targets()
        ]
        assert not missing, f"{where}: the Makefile has no target {missing}"
    elif cmd == "mycelium-shm":
        check_cli(args, where)
    elif cmd == "python" and args[:1] == ["-m"]:
        module, rest = args[1], args[2:]
        assert importlib.util.find_spec(module) is not None, f"{where}: no module {module}"
        if module == "mycelium_shm":
            check_cli(rest, where)
        elif module != "pytest":
            sub = tuple(rest[:1]) if rest and re.fullmatch(r"[a-z]+", rest[0]) else ()
            check_options(rest, ("-m", module, *sub), where)
            check_paths(rest, cwd, where)
        else:
            check_paths(rest, cwd, where)
    elif cmd == "python":
        assert args and (cwd / args[0]).is_file(), f"{where}: no script {args[:1]}"
        check_paths(args, cwd, where)
    elif cmd == "cargo":
        assert args[0] in {"test", "build", "run", "clippy", "fmt", "doc"}, where
        manifest = args[args.index("--manifest-path") + 1] if "--manifest-path" in args else None
        assert manifest is None or (cwd / manifest).is_file(), f"{where}: no {manifest}"
    elif cmd == "dune":
        assert args[0] in {"build", "test", "exec", "clean"}, where
        root = args[args.index("--root") + 1] if "--root" in args else "."
        assert (cwd / root / "dune-project").is_file(), f"{where}: no dune project in {root}"
    elif (cwd / cmd).is_file():
        assert os.access(cwd / cmd, os.X_OK), f"{where}: {cmd} is not executable"
        check_paths(args, cwd, where)
    else:
        raise AssertionError(f"{where}: no rule for the command {cmd!r} (see the module doc)")
    return cwd


@pytest.mark.parametrize("block", blocks_of("commands"), ids=lambda b: b.where)
def test_commands_name_what_exists(block: Block) -> None:
    cwd = ROOT
    for n, line in enumerate(block.code.splitlines(), block.line + 1):
        words = shlex.split(line, comments=True)
        if words:
            cwd = check_command(words, cwd, f"{block.readme.relative_to(ROOT)}:{n}")


def test_command_checker_catches_mistakes() -> None:
    with pytest.raises(AssertionError, match="no target"):
        check_command(["make", "no-such-target"], ROOT, "x")
    with pytest.raises(AssertionError):
        check_command(["mycelium-shm", "no-such-command"], ROOT, "x")
    with pytest.raises(AssertionError, match="no option"):
        check_command(["mycelium-shm", "bench", "--no-such-option"], ROOT, "x")
    with pytest.raises(AssertionError, match="does not exist"):
        check_command(["python", "-m", "pytest", "tests/no_such_test.py"], ROOT, "x")
    with pytest.raises(AssertionError, match="no rule"):
        check_command(["frobnicate"], ROOT, "x")


def test_bench_outside_a_checkout_says_how_to_run_it() -> None:
    """An installed package has no bench/: `mycelium-shm bench` says so in one line."""
    code = (
        "import sys\n"
        "import mycelium_shm.cli.cmd_bench as cmd_bench\n"
        "cmd_bench.find_bench = lambda: None\n"
        "from mycelium_shm.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    for argv in (["bench", "--quick"], ["bench", "--json"]):
        proc = subprocess.run(
            [PYTHON, "-c", code, *argv], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 1, proc
        assert proc.stdout == ""
        assert proc.stderr == f"mycelium-shm: error: {cmd_bench.NOT_INSTALLED}\n"
    assert "make bench" in cmd_bench.NOT_INSTALLED


def test_schema_is_package_data() -> None:
    """schemas/trading.toml is found through the package (copied into wheels by setup.py)."""
    from mycelium_shm import Schema, schemas

    path = schemas.path("trading")
    assert path.read_bytes() == (ROOT / "schemas" / "trading.toml").read_bytes()
    assert "trading" in schemas.names()
    assert Schema.load(path).digest == Schema.load(ROOT / "schemas" / "trading.toml").digest
    with pytest.raises(FileNotFoundError):
        schemas.path("no-such-schema")
    with pytest.raises(ValueError):
        schemas.path("../schemas/trading")


# -- rust: compile -------------------------------------------------------------------


@pytest.mark.parametrize("block", blocks_of("compile"), ids=lambda b: b.where)
def test_rust_snippet_compiles_and_runs(block: Block, tmp_path: Path) -> None:
    cargo = shutil.which("cargo")
    if cargo is None:
        pytest.skip("cargo is not installed")
    crate = ROOT / "bindings" / "rust"
    names = unique_names(block, f"{os.getpid()}-{uuid.uuid4().hex[:8]}")
    body = rewrite(block.code, names, [])
    (tmp_path / "src").mkdir()
    (tmp_path / "Cargo.toml").write_text(
        '[package]\nname = "readme-snippet"\nversion = "0.0.0"\nedition = "2021"\n'
        "publish = false\n\n[workspace]\n\n[dependencies]\n"
        f'mycelium-shm = {{ path = "{crate}" }}\n'
    )
    shutil.copyfile(crate / "Cargo.lock", tmp_path / "Cargo.lock")
    indented = "\n".join(f"    {line}" if line else "" for line in body.splitlines())
    (tmp_path / "src" / "main.rs").write_text(
        "#![allow(unused_imports, unused_variables, unused_mut)]\n"
        "fn main() -> Result<(), mycelium_shm::Error> {\n"
        f"{indented}\n    Ok(())\n}}\n"
    )
    env = dict(os.environ, CARGO_TARGET_DIR=str(crate / "target" / "readme-snippets"))
    try:
        proc = subprocess.run(
            [cargo, "run", "--offline", "--quiet"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, f"{block.where}:\n{proc.stderr[-4000:]}"
    finally:
        for n in names.values():
            unlink(n, missing_ok=True)


# -- ocaml: api --------------------------------------------------------------------

OCAML_DIRS = [ROOT / "bindings" / "ocaml" / d for d in ("src", "generated", "codec")]


def ocaml_interface(module: str) -> str | None:
    """The text of module's .mli, with that of the modules it ``include``s."""
    stem = module[0].lower() + module[1:]
    for d in OCAML_DIRS:
        mli = d / f"{stem}.mli"
        if mli.is_file():
            text = mli.read_text()
            for other in set(re.findall(r"^\s*include\s+([A-Z]\w*)\.", text, re.M)):
                if other != module:
                    text += ocaml_interface(other) or ""
            return text
    return None


def ocaml_declares(text: str, name: str) -> bool:
    n = re.escape(name)
    if name[0].isupper():  # a constructor or a submodule
        return bool(re.search(rf"(\|\s*{n}\b|\bmodule\s+{n}\b|[=(]\s*{n}\b)", text))
    return bool(re.search(rf"(\bval\s+{n}\b|\btype\s+(?:\S+\s+)?{n}\b|\b{n}\s*:)", text))


@pytest.mark.parametrize("block", blocks_of("api"), ids=lambda b: b.where)
def test_ocaml_snippet_names_existing_api(block: Block) -> None:
    code = re.sub(r'"[^"]*"', '""', block.code)
    opened = re.findall(r"\bopen\s+([A-Z]\w*)", code)
    uses = set(re.findall(r"\b([A-Z]\w*(?:\.[A-Za-z_]\w*)+)", code))
    assert uses, f"{block.where}: no qualified names found"
    missing = []
    for use in sorted(uses):
        parts = use.split(".")
        if parts[0] in opened:
            continue
        text = ocaml_interface(parts[0])
        if text is None:
            missing.append(f"{use} (no interface for {parts[0]})")
            continue
        if not all(ocaml_declares(text, p) for p in parts[1:]):
            missing.append(use)
    assert not missing, f"{block.where}: not declared: {missing}"
