"""The import arrows of ARCHITECTURE.md hold: the runtime stands alone, the compiler needs no frontend."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE_OF_FOLDER = {"frontend": "ember", "compiler": "ember.compiler", "codegen": "ember.codegen", "runtime": "ember.runtime"}

# folder -> the ember modules (prefixes) its files may import
ALLOWED = {
    "compiler": ("ember.compiler", "ember.runtime.errors"),
    "codegen": ("ember.codegen", "ember.compiler", "ember.runtime"),
    "runtime": ("ember.runtime",),
}


def imported_modules(path: Path, package: str) -> list[str]:
    """Absolute names of every module `path` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    parts = package.split(".")
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = parts[: len(parts) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            names.append(module)
            names += [f"{module}.{alias.name}" for alias in node.names]
    return names


def package_of(path: Path) -> str:
    rel = path.relative_to(REPO)
    folder, *subdirs = rel.parts[:-1]
    return ".".join([PACKAGE_OF_FOLDER[folder], *subdirs])


def _allowed(module: str, allowed: tuple[str, ...]) -> bool:
    """`module` is an allowed module, inside one, or a name imported from one (`ember.runtime.errors.X`)."""
    return any(module == a or module.startswith(a + ".") for a in allowed) or module == "ember.runtime"


def test_each_folder_imports_only_what_the_architecture_allows():
    violations = []
    for folder, allowed in ALLOWED.items():
        for path in (REPO / folder).rglob("*.py"):
            for module in imported_modules(path, package_of(path)):
                if module.startswith("ember") and not _allowed(module, allowed):
                    violations.append(f"{path.relative_to(REPO)} imports {module}")
    assert violations == []


def test_runtime_imports_without_llvmlite_or_networkx():
    """With llvmlite and networkx made unimportable, the runtime still imports."""
    code = (
        "import sys; sys.modules['llvmlite'] = None; sys.modules['networkx'] = None\n"
        "import ember.runtime\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('llvmlite', 'networkx') and sys.modules[m]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
