"""medtext's layers import downwards only: a module may import its own layer and the layers below it."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# lowest first; data_modules and callbacks sit on medtext.core alone
LAYERS = ["medtext.core", "data_modules", "callbacks", "medtext.heads", "medtext.model", "medtext.baselines",
          "medtext.runtime", "medtext.deploy", "medtext.commands", "medtext"]


def layer_of(module: str) -> int:
    """The index in LAYERS of the most specific layer holding ``module``."""
    return max((len(layer), i) for i, layer in enumerate(LAYERS)
               if module == layer or module.startswith(layer + "."))[1]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_nodes(tree: ast.AST):
    """Every node but those under ``if TYPE_CHECKING:`` (imports for type checkers only)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            continue
        yield node
        yield from runtime_nodes(node)


def imported(path: Path) -> set[str]:
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    names = set()
    for node in runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            module = f"{base}.{node.module}" if node.level and node.module else base if node.level else node.module
            names |= {module, *(f"{module}.{alias.name}" for alias in node.names)}  # a name may be a module
    return {name for name in names if name and name.split(".")[0] in ("medtext", "data_modules", "callbacks")}


SOURCES = sorted(p for package in ("medtext", "data_modules", "callbacks") for p in (ROOT / package).rglob("*.py"))
MODULES = {module_name(p) for p in SOURCES}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down(path):
    own = layer_of(module_name(path))
    targets = {name for name in imported(path) if name in MODULES}
    upward = sorted(name for name in targets if layer_of(name) > own)
    assert upward == [], f"{module_name(path)} ({LAYERS[own]}) imports a higher layer: {upward}"


def test_every_medtext_import_names_a_module_or_a_name_in_one():
    for path in SOURCES:
        for name in imported(path):
            assert name in MODULES or name.rpartition(".")[0] in MODULES, f"{path.relative_to(ROOT)}: {name}"


def test_no_import_circle():
    graph = {module_name(p): {n if n in MODULES else n.rpartition(".")[0] for n in imported(p)} & MODULES
             for p in SOURCES}
    graph = {module: {t for t in targets if t != module and not module.startswith(t + ".")}  # a package's own parents
             for module, targets in graph.items()}
    done, path = set(), []

    def visit(module: str) -> None:
        if module in path:
            raise AssertionError(f"import circle: {' -> '.join(path[path.index(module):] + [module])}")
        if module in done:
            return
        path.append(module)
        for target in sorted(graph.get(module, ())):
            visit(target)
        path.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)
