"""Every ```python block in README.md and docs/*.md runs as pasted, alone.

Each block runs in a fresh interpreter (``sys.executable``), in an empty temporary
working directory (snippets write files such as opt.npz), with a timeout; the test
asserts exit status 0 and shows stderr otherwise.  The test id is "file:line", the
line of the block's opening fence; tracebacks name the Markdown file and its lines.

Documented values are checked too: a top-level bare expression whose line ends in a
comment holding a Python literal, e.g.

    lr(1), lr(100)        # (0.2, 0.2)

must evaluate to that literal (``==``; a list or tuple must also be of the same
type).  The block still runs as one module, in order; only those expression
statements are wrapped in the check.  The child reports how many checks it ran and
the test compares that with the number found here, so a check cannot be lost.

A block that imports torch (``torch`` or ``pyrmsprop.torch``) skips without torch,
unless ``PYRMSPROP_REQUIRE_TORCH=1`` (CI), where a missing torch is an error (the
``torch`` fixture of conftest.py); a block importing scikit-learn or ml_dtypes skips
without it.
A block calling ``init_process_group`` gets the environment torchrun sets for a
world of one process (RANK=0, WORLD_SIZE=1, LOCAL_RANK=0, MASTER_ADDR=127.0.0.1,
MASTER_PORT=a free port).

The sdist ships README.md but not docs/ (MANIFEST.in): there, the README's blocks
run and docs/ is one skipped case saying so.  Without README.md next to tests/
(tests copied elsewhere) the module skips.
"""

import ast
import io
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
TIMEOUT = 300  # seconds per block; a torch import on a busy machine takes a few
MARK = "pyrmsprop-docs-checked:"

if not README.is_file():
    pytest.skip(f"no README.md next to the tests ({ROOT})", allow_module_level=True)

_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([^`\s]*)")


def python_blocks(path: Path) -> list[tuple[int, str]]:
    """(line of the opening fence, dedented source) of each ```python block."""
    blocks, lines = [], path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = m.groups()
        start, body = i + 1, []
        i += 1
        while i < len(lines) and not re.match(rf"^\s*{fence[0]}{{{len(fence)},}}\s*$", lines[i]):
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i].lstrip())
            i += 1
        if i == len(lines):
            raise AssertionError(f"{path.name}:{start}: fence never closed")
        i += 1
        if lang.lower() in ("python", "py", "python3"):
            blocks.append((start, "\n".join(body) + "\n"))
    return blocks


def expected_values(source: str) -> dict[int, str]:
    """{line in the block: literal source} for each top-level bare expression whose
    last line ends in a comment that is a Python literal."""
    comments = {tok.start[0]: tok.string[1:].strip()
                for tok in tokenize.generate_tokens(io.StringIO(source).readline)
                if tok.type == tokenize.COMMENT}
    found = {}
    for node in ast.parse(source).body:
        text = comments.get(node.end_lineno)
        if isinstance(node, ast.Expr) and text:
            try:
                ast.literal_eval(text)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
            found[node.end_lineno] = text
    return found


def imported_modules(source: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


# The child: run the block as the __main__ module of a fresh interpreter, with only
# the documented-value expressions wrapped in a check.  Nothing the runner imports is
# left in the block's namespace.
RUNNER = r'''
def _run():
    import ast, builtins, json, sys, types
    snippet, markdown, first_line, checks = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    checks = {int(k): v for k, v in json.loads(checks).items()}
    source = open(snippet, encoding="utf-8").read()
    tree = ast.parse(source, markdown)
    done = []

    def check(value, line):
        expected = ast.literal_eval(checks[line])
        done.append(line)
        def same(a, b):
            if isinstance(b, (list, tuple)):
                return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
            return bool(a == b)
        if not same(value, expected):
            raise AssertionError(f"{markdown}:{first_line + line}: the expression gives "
                                 f"{value!r}, the comment documents {expected!r}")

    for i, node in enumerate(tree.body):
        if isinstance(node, ast.Expr) and node.end_lineno in checks:
            call = ast.Call(ast.Name("__pyrmsprop_docs_check__", ast.Load()),
                            [node.value, ast.Constant(node.end_lineno)], [])
            tree.body[i] = ast.copy_location(ast.Expr(ast.copy_location(call, node)), node)
    ast.fix_missing_locations(tree)
    ast.increment_lineno(tree, first_line)       # tracebacks point into the Markdown file
    module = types.ModuleType("__main__")
    module.__file__ = markdown
    module.__builtins__ = builtins
    module.__pyrmsprop_docs_check__ = check
    sys.modules["__main__"] = module
    exec(compile(tree, markdown, "exec"), module.__dict__)
    print("''' + MARK + r'''", json.dumps(sorted(done)), flush=True)

_run()
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cases():
    files = [README]
    if DOCS.is_dir():
        files += sorted(DOCS.glob("*.md"))
    for path in files:
        for line, source in python_blocks(path):
            rel = path.relative_to(ROOT).as_posix()
            yield pytest.param(path, line, source, id=f"{rel}:{line}")
    if not DOCS.is_dir():
        reason = ("docs/ is not in this tree: the sdist ships README.md but not docs/ "
                  "(MANIFEST.in)" if (ROOT / "PKG-INFO").is_file() else None)
        yield pytest.param(None, 0, reason, id="docs/*.md")


CASES = list(_cases())


def run_block(path: Path, line: int, source: str, tmp_path: Path, env_extra=None):
    work = Path(tempfile.mkdtemp(dir=tmp_path))
    snippet = work / "snippet.py"
    snippet.write_text(source, encoding="utf-8")
    cwd = work / "cwd"  # empty: what the block writes lands here
    cwd.mkdir()
    checks = expected_values(source)
    env = dict(os.environ)
    env.pop("PYTHONSTARTUP", None)
    env.update(env_extra or {})
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, str(snippet), str(path), str(line), json.dumps(checks)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    return proc, checks


@pytest.mark.parametrize("path, line, source", CASES)
def test_block_runs_as_pasted(path, line, source, tmp_path, request):
    if path is None:
        if source is None:
            pytest.fail(f"{DOCS} is missing from a checkout (no PKG-INFO: not an sdist)")
        pytest.skip(source)
    modules = imported_modules(source)
    if any(m == "torch" or m.startswith(("torch.", "pyrmsprop.torch")) for m in modules):
        request.getfixturevalue("torch")  # skip, or fail under PYRMSPROP_REQUIRE_TORCH=1
    if any(m.split(".")[0] == "sklearn" for m in modules):
        pytest.importorskip("sklearn", reason="this block needs scikit-learn")
    if any(m.split(".")[0] == "ml_dtypes" for m in modules):
        pytest.importorskip("ml_dtypes", reason="this block needs ml_dtypes (bfloat16)")
    env = {}
    if "init_process_group" in source:
        env = {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0",
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())}
    proc, checks = run_block(path, line, source, tmp_path, env)
    where = f"{path.relative_to(ROOT).as_posix()}:{line}"
    if proc.returncode != 0:
        pytest.fail(f"{where} exited with status {proc.returncode}\n--- stderr ---\n"
                    f"{proc.stderr}--- stdout ---\n{proc.stdout}", pytrace=False)
    reported = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    assert len(reported) == 1, f"{where}: the runner did not finish:\n{proc.stdout}"
    assert json.loads(reported[0][len(MARK):]) == sorted(checks), (
        f"{where}: documented values checked {reported[0]}, expected lines {sorted(checks)}")


def test_at_least_one_block_per_file():
    files = {c.values[0] for c in CASES if c.values[0] is not None}
    assert README in files
    if DOCS.is_dir():
        for name in ("optimizers.md", "schedules.md", "torch.md"):
            assert DOCS / name in files, f"no ```python block found in docs/{name}"


# The machinery itself must be able to fail.

def test_a_failing_block_fails(tmp_path):
    proc, _ = run_block(README, 0, "import numpy as np\nnp.zeros(3) + undefined_name\n", tmp_path)
    assert proc.returncode != 0 and "NameError" in proc.stderr


def test_a_wrong_documented_value_fails(tmp_path):
    source = "x = 0.1 + 0.2\nx, [x]   # (0.3, [0.3])\n"
    assert expected_values(source) == {2: "(0.3, [0.3])"}
    proc, _ = run_block(README, 0, source, tmp_path)
    assert proc.returncode != 0
    assert "0.30000000000000004" in proc.stderr and "documents (0.3, [0.3])" in proc.stderr


def test_a_right_documented_value_passes_and_is_counted(tmp_path):
    source = "x = 0.5\nx, [x]   # (0.5, [0.5])\nx   # not a literal\n"
    assert expected_values(source) == {2: "(0.5, [0.5])"}
    proc, _ = run_block(README, 0, source, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"{MARK} [2]" in proc.stdout


def test_a_list_documented_as_a_tuple_fails(tmp_path):
    proc, _ = run_block(README, 0, "[0.5]   # (0.5,)\n", tmp_path)
    assert proc.returncode != 0 and "documents (0.5,)" in proc.stderr


def test_the_namespace_is_clean(tmp_path):
    """The runner's own imports do not leak into the block (a missing import fails)."""
    proc, _ = run_block(README, 0, "sys.exit(0)\n", tmp_path)
    assert proc.returncode != 0 and "NameError" in proc.stderr
    proc, _ = run_block(README, 0, "json.dumps(1)\n", tmp_path)
    assert proc.returncode != 0 and "NameError" in proc.stderr
