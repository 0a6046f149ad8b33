"""Rewrite the code dependencies of every stage in dvc.yaml from the stage script's imports.

Each stage lists its script and exactly the package modules it imports, directly or through
other modules, so `dvc repro` reruns a stage when, and only when, code it runs changed.
`python tools/code_deps.py` rewrites dvc.yaml; `--check` exits 1 when it is out of date (the
stage-contract tests run the same check).
"""

from __future__ import annotations

import ast
import functools
import re
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src/retrain"


def module_file(dotted: str) -> Path | None:
    """The file of a module of the retrain package (`retrain.data.files`), or None."""
    parts = dotted.split(".")
    if parts[0] != "retrain":
        return None
    base = PACKAGE.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def package_imports(path: Path) -> set[Path]:
    """Files of the retrain package that a file imports directly, with the `__init__.py` of
    every package on the way that holds code (importing `retrain.data.files` runs
    `retrain/__init__.py` first); one that holds only a docstring and constants is no
    dependency."""
    found: set[Path] = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):
                file = module_file(".".join(parts[:depth]))
                if file is not None and (file.name != "__init__.py" or holds_code(file)):
                    found.add(file)
    return found


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node of `tree` but those under `if TYPE_CHECKING:`: an import only a type checker
    runs is no dependency of what a stage writes."""
    for node in ast.iter_child_nodes(tree):
        kept = node.orelse if isinstance(node, ast.If) and _is_type_checking(node.test) else [node]
        for child in kept:
            yield child
            yield from _runtime_nodes(child)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


@functools.cache
def holds_code(init: Path) -> bool:
    """Whether an `__init__.py` holds more than a docstring and constants."""
    return any(
        not (isinstance(node, (ast.Expr, ast.Assign)) and isinstance(node.value, ast.Constant))
        for node in ast.parse(init.read_text()).body
    )


def closure(script: Path) -> list[str]:
    """The package files `script` runs, as dvc.yaml paths."""
    todo, seen = list(package_imports(script)), set()
    while todo:
        file = todo.pop()
        if file not in seen:
            seen.add(file)
            todo += package_imports(file)
    return sorted(str(file.relative_to(ROOT)) for file in seen)


def rewritten(text: str) -> str:
    """dvc.yaml with each stage's `src/retrain/*.py` deps replaced by its script's closure."""
    out: list[str] = []
    script = None
    for line in text.splitlines():
        match = re.match(r"\s+cmd: python (stages/\S+\.py)", line)
        if match:
            script = match.group(1)
        dep = re.match(r"(\s+)- (stages/\S+\.py)$", line)
        if re.match(r"\s+- src/retrain/\S+\.py$", line):
            continue
        out.append(line)
        if dep and dep.group(2) == script:
            out += [f"{dep.group(1)}- {path}" for path in closure(ROOT / script)]
    return "\n".join(out) + "\n"


def main() -> int:
    path = ROOT / "dvc.yaml"
    text = path.read_text()
    new = rewritten(text)
    if "--check" in sys.argv[1:]:
        if new != text:
            print("dvc.yaml: code deps are out of date; run python tools/code_deps.py", file=sys.stderr)
            return 1
        return 0
    path.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
