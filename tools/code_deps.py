"""Rewrite the code dependencies of every stage in dvc.yaml from the stage script's imports.

Each stage lists its script and exactly the package modules it imports, directly or through
other modules, so `dvc repro` reruns a stage when, and only when, code it runs changed.
`python tools/code_deps.py` rewrites dvc.yaml; `--check` exits 1 when it is out of date (the
stage-contract tests run the same check).
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src/retrain"


def package_imports(path: Path) -> set[str]:
    """Modules of the retrain package that a file imports directly."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                found |= {node.module} if node.module else {a.name for a in node.names}
            elif node.module and node.module.split(".")[0] == "retrain":
                parts = node.module.split(".")
                if len(parts) > 1:
                    found.add(parts[1])
                else:
                    found |= {a.name for a in node.names if (PACKAGE / f"{a.name}.py").exists()}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("retrain.")}
    return found


def closure(script: Path) -> list[str]:
    """The package modules `script` runs, as dvc.yaml paths."""
    todo, seen = list(package_imports(script)), set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += package_imports(PACKAGE / f"{name}.py")
    return sorted(f"src/retrain/{name}.py" for name in seen)


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
