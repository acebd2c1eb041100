"""The architecture rules that import-linter cannot state (the layer contract itself is in pyproject.toml).

- No import cycle between modules: function-level imports and imports under `if TYPE_CHECKING:` included.
- No module imports an underscored name, or an underscored module, of another package.
- No module outside a package reads an underscored attribute that package defines (a heuristic over the AST: an
  attribute access `thing._name` where `thing` is not `self` / `cls` and `_name` is not defined in the reading
  package).
- Every module stays small (one purpose each), and every public module lists its API in `__all__`, completely.
- The error tree in `miniagents_nb.errors`' docstring names every error class of the package.
- The seed-era table in `miniagents_nb.compat` and the one in docs/architecture.md agree, and every entry resolves.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from collections.abc import Iterator
from pathlib import Path

import grimp
import pytest

import miniagents_nb
from miniagents_nb import errors
from miniagents_nb.compat import SEED_ERA_NAMES, resolve

ROOT = Path(miniagents_nb.__file__).parent
DOCS = ROOT.parent / "docs" / "architecture.md"
MAX_MODULE_LINES = 450


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(relative.parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _package_of(module: str) -> str:
    """The package a module belongs to (itself, for a package's `__init__`)."""
    if MODULES[module].name == "__init__.py":
        return module
    return module.rpartition(".")[0]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    todo: list[ast.stmt] = list(tree.body)
    while todo:
        node = todo.pop(0)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                todo.extend(node.body)
            todo.extend(node.orelse)
        elif isinstance(node, ast.Try):
            todo.extend([*node.body, *node.orelse, *node.finalbody])
            for handler in node.handlers:
                todo.extend(handler.body)


def _all_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import, function-level ones included, except those under `if TYPE_CHECKING:`."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in skipped:
            yield node


def _resolve_from(module: str, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = _package_of(module).split(".")
    base = base[: len(base) - node.level + 1]
    return ".".join([*base, *([node.module] if node.module else [])])


def _imported_modules(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The package modules an import statement loads (for `from package import submodule`, the submodule)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in MODULES]
    target = _resolve_from(module, node)
    found = [target] if target in MODULES else []
    found += [f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in MODULES]
    return found


TREES = {module: ast.parse(path.read_text(encoding="utf-8")) for module, path in MODULES.items()}


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    cycles: list[list[str]] = []
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return cycles


def test_no_import_cycles_between_modules() -> None:
    """Module-level and function-level imports alike (grimp's graph), everything that runs."""
    cycles = _cycles(grimp.build_graph("miniagents_nb", exclude_type_checking_imports=True, cache_dir=None))
    assert cycles == [], f"import cycles between modules: {cycles}"


def test_no_import_cycles_even_through_annotations() -> None:
    """Imports under `if TYPE_CHECKING:` too: the modules form a strict order for type checkers as well (the agent
    core does it with `AgentDefinition` below `AgentCall` and `ObservedCall` for what observers read)."""
    cycles = _cycles(grimp.build_graph("miniagents_nb", exclude_type_checking_imports=False, cache_dir=None))
    assert cycles == [], f"import cycles through annotations: {cycles}"


def _layer_unit(module: str) -> str:
    """`miniagents_nb.X` for everything in X (a top-level module or a subpackage); the root `__init__` itself."""
    return ".".join(module.split(".")[:2])


def test_no_package_imports_another_that_imports_it_back() -> None:
    """Annotations included: the top-level modules and subpackages form a strict order (the layers contract says
    so for what runs)."""
    graph = grimp.build_graph("miniagents_nb", exclude_type_checking_imports=False, cache_dir=None)
    packages = sorted({_layer_unit(module) for module in graph.modules})
    edges = {
        (_layer_unit(importer), _layer_unit(imported))
        for importer in graph.modules
        for imported in graph.find_modules_directly_imported_by(importer)
        if _layer_unit(importer) != _layer_unit(imported)
    }
    both_ways = sorted({tuple(sorted(edge)) for edge in edges if (edge[1], edge[0]) in edges})
    assert both_ways == [], f"packages that import each other: {both_ways} (of {packages})"


def _defining_package(name: str) -> str:
    """The package that owns a dotted module path (`a.b._c` is owned by `a.b`)."""
    return _package_of(name) if name in MODULES else name.rpartition(".")[0]


def _crosses_into(importer: str, owner: str) -> bool:
    importer_package = _package_of(importer)
    return not (importer_package == owner or importer_package.startswith(owner + "."))


def test_no_underscored_names_imported_across_packages() -> None:
    offences: list[str] = []
    for module, tree in TREES.items():
        for node in _all_imports(tree):
            if isinstance(node, ast.ImportFrom):
                source = _resolve_from(module, node)
                if not source.startswith("miniagents_nb"):
                    continue
                private_module = any(part.startswith("_") for part in source.split(".")[1:])
                owner = _defining_package(source)
                if private_module and _crosses_into(module, owner.rpartition(".")[0] if source in MODULES else owner):
                    offences.append(f"{module}: from {source} import ...")
                for alias in node.names:
                    if alias.name.startswith("_") and _crosses_into(module, _defining_package(source)):
                        offences.append(f"{module}: from {source} import {alias.name}")
                    full = f"{source}.{alias.name}"
                    if alias.name.startswith("_") and full in MODULES and _crosses_into(module, source):
                        offences.append(f"{module}: imports module {full}")
            else:
                for alias in node.names:
                    parts = alias.name.split(".")
                    if parts[0] == "miniagents_nb" and any(part.startswith("_") for part in parts[1:]):
                        owner = ".".join(parts[: next(i for i, p in enumerate(parts) if p.startswith("_"))])
                        if _crosses_into(module, owner):
                            offences.append(f"{module}: import {alias.name}")
    assert offences == [], "\n".join(offences)


def _defined_private_names(package: str) -> set[str]:
    names: set[str] = set()
    for module, tree in TREES.items():
        if _package_of(module) != package and not _package_of(module).startswith(package + "."):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("_"):
                names.add(node.value)  # `__slots__` entries
    return {name for name in names if name.startswith("_")}


# Packages that observe or build on the core; each may read only what the core makes public.
_OUTER_PACKAGES = ["miniagents_nb.jupyter", "miniagents_nb.orchestration", "miniagents_nb.ext"]


@pytest.mark.parametrize("package", _OUTER_PACKAGES)
def test_outer_packages_read_no_private_attributes_of_the_core(package: str) -> None:
    own = _defined_private_names(package)
    offences: list[str] = []
    for module, tree in TREES.items():
        if not (module == package or module.startswith(package + ".")):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute):
                continue
            name = node.attr
            if not name.startswith("_") or (name.startswith("__") and name.endswith("__")) or name in own:
                continue
            receiver = node.value
            if isinstance(receiver, ast.Name) and receiver.id in {"self", "cls"}:
                continue
            if isinstance(receiver, ast.Call) and isinstance(receiver.func, ast.Name) and receiver.func.id == "super":
                continue
            offences.append(f"{module}:{node.lineno}: .{name}")
    assert offences == [], "\n".join(offences)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_stay_small(module: str) -> None:
    lines = MODULES[module].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_MODULE_LINES, f"{module} has {lines} lines: split it by purpose (at most ~400 each)"


def _public_modules() -> list[str]:
    return [module for module in sorted(MODULES) if not any(part.startswith("_") for part in module.split(".")[1:])]


@pytest.mark.parametrize("module", _public_modules())
def test_public_modules_list_their_api_completely(module: str) -> None:
    """`__all__` exists, every name in it resolves, and every public class or function defined here is in it."""
    try:
        imported = importlib.import_module(module)
    except ImportError as error:  # an optional extra that is not installed
        pytest.skip(str(error))
    exported = getattr(imported, "__all__", None)
    assert exported is not None, f"{module} has no __all__"
    for name in exported:
        assert hasattr(imported, name), f"{module}.__all__ names {name!r}, which does not exist"
    tree = TREES[module]
    defined = {
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not node.name.startswith("_")
    }
    missing = sorted(defined - set(exported))
    assert missing == [], f"{module} defines public {missing} but leaves them out of __all__"


def _error_classes() -> set[type[BaseException]]:
    found: set[type[BaseException]] = set()
    for module in _public_modules():
        try:
            imported = importlib.import_module(module)
        except ImportError:
            continue
        for _, value in inspect.getmembers(imported, inspect.isclass):
            # A private base (such as the one the tool call errors share) is an implementation detail, not a
            # branch a user catches, so the tree names only public classes.
            public = not value.__name__.startswith("_")
            if public and issubclass(value, errors.MiniAgentsError) and value.__module__.startswith("miniagents_nb"):
                found.add(value)
    return found


def test_the_error_tree_names_every_error() -> None:
    tree_text = errors.__doc__ or ""
    named = set(re.findall(r"(\w+Error)\b", tree_text))
    missing = sorted(cls.__name__ for cls in _error_classes() if cls.__name__ not in named)
    assert missing == [], f"miniagents_nb.errors' tree leaves out {missing}"


def test_every_error_derives_from_the_root() -> None:
    for module in _public_modules():
        try:
            imported = importlib.import_module(module)
        except ImportError:
            continue
        for _, value in inspect.getmembers(imported, inspect.isclass):
            if value.__module__ == module and value.__name__.endswith("Error"):
                assert issubclass(value, errors.MiniAgentsError), f"{module}.{value.__name__}"


def test_seed_era_table_matches_the_docs() -> None:
    text = DOCS.read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([^`]+)` \| `([^`]+)` \|", text, flags=re.MULTILINE)
    assert rows == [(name.old, name.current) for name in SEED_ERA_NAMES]


@pytest.mark.parametrize("name", SEED_ERA_NAMES, ids=lambda name: name.old)
def test_every_seed_era_name_resolves(name: object) -> None:
    from miniagents_nb.compat import SeedEraName

    assert isinstance(name, SeedEraName)
    for path in (name.old, name.current):
        dotted = re.sub(r"\(.*\)$", "", path)
        if dotted.startswith("miniagents_nb."):
            assert resolve(dotted) is not None
        else:  # `Class.member` on the public API (a context's settings are instance attributes)
            owner, _, member = dotted.partition(".")
            target = getattr(miniagents_nb, owner)
            if member and not path.endswith(")"):
                instance = target() if target is miniagents_nb.MiniAgents else target
                assert hasattr(instance, member), path
