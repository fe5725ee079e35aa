"""The README's layer table is the truth: every import in ``cnnkit/`` (at module level and inside functions)
goes down that table or stays in its row, no two packages import each other round a cycle, and no module
imports another module's private name.

The rules, on the table under "### Library" in README.md (its first row is the lowest layer):
* every module of ``cnnkit/`` belongs to the table's longest package name that contains it (``cnnkit.nn.functional.conv``
  to ``cnnkit.nn.functional``, ``cnnkit.nn.fusion`` to ``cnnkit.nn``); ``cnnkit/__init__.py`` (the front door,
  which only re-exports) and ``cnnkit/__main__.py`` are not layers;
* an import names the module it loads: ``from cnnkit.nn import functional`` loads ``cnnkit.nn.functional``,
  ``from cnnkit import no_grad`` the module the front door takes ``no_grad`` from, and after ``import cnnkit``
  each ``cnnkit.models.create`` loads ``cnnkit.models``;
* a package imports only packages of its own row or of rows above it in the table (lower layers), and the
  packages' imports form no cycle.
A new package is one more row (or one more name in a row). The checker is tried on a synthetic tree below.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]



# ----------------------------------------------------------------------------- the checker
def layer_table(readme: str) -> list[list[str]]:
    """The package names of each row of the README's ``| layer | package |`` table, lowest layer first."""
    lines = readme.splitlines()
    start = next((i for i, line in enumerate(lines) if re.match(r"^\|\s*layer\s*\|\s*package\s*\|", line)), None)
    if start is None:
        raise AssertionError("README.md has no '| layer | package |' table")
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append(re.findall(r"`([A-Za-z_][\w.]*)`", line.rstrip().rstrip("|").rsplit("|", 1)[-1]))
    return rows


def modules(package_dir: Path) -> dict:
    """Dotted module name → file, for every ``.py`` under ``package_dir`` (a package is its ``__init__``)."""
    out = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _front_door(top: str, files: dict) -> dict:
    """Name re-exported by the top package's ``__init__`` → the modules it comes from."""
    tree = ast.parse(files[top].read_text())
    found = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            for alias in node.names:
                found[alias.asname or alias.name] = {f"{top}.{node.module}" if node.module else f"{top}.{alias.name}"}
        elif isinstance(node, ast.FunctionDef):       # cnnkit.summary: a function that imports its layer
            found[node.name] = {f"{top}.{n.module}" for n in ast.walk(node) if isinstance(n, ast.ImportFrom)
                                and n.level == 1 and n.module}
    return found


def imports(module: str, path: Path, files: dict) -> list:
    """``(line, imported module)`` for every import of the tree's own modules in ``path``, however written."""
    top = module.split(".")[0]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    door = _front_door(top, files) if top in files else {}
    tree = ast.parse(path.read_text())
    found, bound = [], set()

    def resolve(dotted: str):
        """The longest module of the tree that ``dotted`` names (a re-exported name: its source module)."""
        parts = dotted.split(".")
        for n in range(len(parts), 0, -1):
            name = ".".join(parts[:n])
            if name in files and name != top:
                return {name}
            if name == top and n < len(parts) and parts[1] in door:
                return door[parts[1]]
        return set()

    nodes = list(ast.walk(tree))
    for node in nodes:                                   # `import cnnkit` (or cnnkit.x.y) binds the name cnnkit
        if isinstance(node, ast.Import):
            bound |= {top for alias in node.names if alias.asname is None and alias.name.split(".")[0] == top}
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == top or alias.name.startswith(top + "."):
                    found += [(node.lineno, m) for m in resolve(alias.name)]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source != top and not source.startswith(top + "."):
                continue
            for alias in node.names:
                found += [(node.lineno, m) for m in (resolve(f"{source}.{alias.name}") or resolve(source))]
        elif isinstance(node, ast.Attribute) and bound:
            chain, inner = [node.attr], node.value
            while isinstance(inner, ast.Attribute):
                chain.append(inner.attr)
                inner = inner.value
            if isinstance(inner, ast.Name) and inner.id in bound:
                found += [(node.lineno, m) for m in resolve(".".join([inner.id] + chain[::-1]))]
    return sorted(set(found))


def private_imports(module: str, path: Path, files: dict) -> list:
    """``(line, source module, name)`` for ``from X import _name`` of another module's private (non-module) name."""
    top = module.split(".")[0]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            source = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module or ""
            if source != top and not source.startswith(top + "."):
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__") \
                        and f"{source}.{alias.name}" not in files:
                    out.append((node.lineno, source, alias.name))
    return out


def layer_violations(package_dir: Path, readme: str) -> tuple[list, list, list]:
    """``(modules in no row, upward imports, cycles)`` of the tree ``package_dir`` against the table in ``readme``."""
    rows = layer_table(readme)
    row_of = {name: i for i, row in enumerate(rows) for name in row}
    files = modules(package_dir)
    top = package_dir.name

    def owner(module: str):
        return max((p for p in row_of if module == p or module.startswith(p + ".")), key=len, default=None)

    unlisted = sorted(m for m in files if owner(m) is None and m not in (top, f"{top}.__main__"))
    upward, edges = [], {p: set() for p in row_of}
    for module, path in files.items():
        src = owner(module)
        if src is None:
            continue
        for line, target in imports(module, path, files):
            dst = owner(target)
            if dst is None or dst == src:
                continue
            edges[src].add(dst)
            if row_of[dst] > row_of[src]:
                upward.append(f"{module}:{line} imports {target} ({dst}, row {row_of[dst] + 1}) above {src} "
                              f"(row {row_of[src] + 1})")
    return unlisted, upward, _cycles(edges)


def _cycles(edges: dict) -> list:
    """The strongly connected groups of more than one package (Tarjan), each as a sorted list."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in edges:
        if v not in index:
            visit(v)
    return out


# ----------------------------------------------------------------------------- cnnkit against its README
@pytest.fixture(scope="module")
def checked():
    return layer_violations(REPO / "cnnkit", (REPO / "README.md").read_text())


def test_the_table_names_real_packages_each_once():
    rows = layer_table((REPO / "README.md").read_text())
    names = [n for row in rows for n in row]
    assert len(rows) >= 10 and len(names) == len(set(names))
    files = modules(REPO / "cnnkit")
    assert [n for n in names if n not in files] == []


def test_every_module_is_in_a_layer(checked):
    assert checked[0] == []


def test_no_import_goes_up_the_layer_table(checked):
    assert checked[1] == []


def test_no_import_cycle_between_packages(checked):
    assert checked[2] == []


def test_no_module_imports_another_modules_private_name():
    files = modules(REPO / "cnnkit")
    found = {(m, src, name) for m, path in files.items() for _, src, name in private_imports(m, path, files)}
    assert sorted(found) == []


# ----------------------------------------------------------------------------- the checker on a synthetic tree
README = """# pkg

### Library

| layer | package |
|---|---|
| the bottom | `pkg.low` |
| two siblings | `pkg.mid`, `pkg.side` |
| the top | `pkg.high` |

Each layer depends only on those above it.
"""


def _tree(root: Path, files: dict) -> Path:
    pkg = root / "pkg"
    for name, text in {"__init__.py": "from .low import base\n", "low.py": "base = 1\n", "mid/__init__.py": "",
                       "mid/core.py": "from ..low import base\n", "side.py": "from . import low\n",
                       "high.py": "import pkg\nx = pkg.mid.core\n", **files}.items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(text)
    return pkg


def test_the_checker_passes_a_tree_that_follows_its_table(tmp_path):
    assert layer_violations(_tree(tmp_path, {}), README) == ([], [], [])


@pytest.mark.parametrize("files,expected", [
    ({"low.py": "import pkg.high\n"}, r"pkg.low:1 imports pkg.high \(pkg.high, row 3\) above pkg.low \(row 1\)"),
    ({"low.py": "def f():\n    from .mid import core\n"}, r"pkg.low:2 imports pkg.mid.core \(pkg.mid, row 2\)"),
    ({"mid/core.py": "from pkg import high as h\n"}, r"pkg.mid.core:1 imports pkg.high"),
    ({"low.py": "import pkg\n\ndef f():\n    return pkg.side.low\n"}, r"pkg.low:4 imports pkg.side"),
])
def test_the_checker_catches_an_upward_import(tmp_path, files, expected):
    unlisted, upward, cycles = layer_violations(_tree(tmp_path, files), README)
    assert unlisted == [] and len(upward) == 1 and re.match(expected, upward[0]), upward


def test_the_checker_catches_a_cycle_within_a_row_and_an_unlisted_module(tmp_path):
    pkg = _tree(tmp_path, {"mid/core.py": "from .. import side\n", "side.py": "def f():\n    import pkg.mid\n",
                           "extra.py": ""})
    unlisted, upward, cycles = layer_violations(pkg, README)
    assert unlisted == ["pkg.extra"] and upward == [] and cycles == [["pkg.mid", "pkg.side"]]


def test_the_checker_finds_private_names(tmp_path):
    pkg = _tree(tmp_path, {"mid/core.py": "from ..low import _hidden, base\nfrom .. import side\n"})
    files = modules(pkg)
    assert private_imports("pkg.mid.core", files["pkg.mid.core"], files) == [(1, "pkg.low", "_hidden")]
