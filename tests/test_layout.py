"""The package's architecture, as the README's table states it: stages as subpackages, a short
top level, small modules, and imports that only go one way (no import circle)."""
import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "tinytrain_core"


def _modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        parts = p.relative_to(PKG.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


def _imports(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Every tinytrain_core module each module imports, lazy imports inside functions included."""
    edges = {m: set() for m in mods}
    for m, p in mods.items():
        pkg = m.split(".") if p.name == "__init__.py" else m.split(".")[:-1]
        for n in ast.walk(ast.parse(p.read_text())):
            if isinstance(n, ast.ImportFrom):
                up = pkg[:len(pkg) - n.level + 1]
                base = (n.module or "") if n.level == 0 else ".".join(up + ([n.module] if n.module else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in n.names]
            elif isinstance(n, ast.Import):
                targets = [a.name for a in n.names]
            else:
                continue
            for t in targets:
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t != m and not m.startswith(t + "."):
                    edges[m].add(t)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    index, low, stack, on, found = {}, {}, [], set(), []

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
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in list(edges):
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_one_that_imports_it_back():
    assert _cycles(_imports(_modules())) == []


def test_no_subpackage_imports_one_that_imports_it_back():
    group = lambda m: ".".join(m.split(".")[:2])  # noqa: E731
    edges = {}
    for m, ts in _imports(_modules()).items():
        edges.setdefault(group(m), set()).update(group(t) for t in ts if group(t) != group(m))
    assert _cycles(edges) == []


def test_the_top_level_is_short_and_no_module_is_long():
    top = [p for p in PKG.glob("*.py") if p.name != "__init__.py"]
    assert len(top) <= 14, sorted(p.name for p in top)
    long = {str(p.relative_to(PKG)): n for p in PKG.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}
