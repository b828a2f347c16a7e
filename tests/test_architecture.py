"""The shape of the house: no import cycle among symshape's modules (imports inside functions
included), no module over 600 lines, a docstring stating each module's job, and the one-way data
flow trace -> report -> render / solve / verify."""
import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "symshape"
MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


NAMES = {module_name(p): p for p in MODULES}


def _resolve(importer: str, is_package: bool, level: int, target: str) -> str:
    if level == 0:
        return target
    base = importer.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def imports_of(name: str) -> set:
    """Every symshape module that *name* imports, at the top or inside a function."""
    path = NAMES[name]
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(name, path.name == "__init__.py", node.level, node.module or "")
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in NAMES:
                target = target.rpartition(".")[0]
            if target and target != name and target.startswith("symshape"):
                found.add(target)
    return found


GRAPH = {name: imports_of(name) for name in NAMES}


def _cycle():
    """One import cycle as a list of modules, or None. A package's ``__init__`` re-exporting its
    own submodules is not a cycle (``symshape`` itself is the public surface and imports everything)."""
    graph = {n: {t for t in ts if not (n == "symshape" or t == "symshape" or t.startswith(n + ".") or
                                       n.startswith(t + ".") and NAMES[t].name == "__init__.py")}
             for n, ts in GRAPH.items()}
    state, stack = {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for t in sorted(graph[n]):
            if state.get(t) == 1:
                return stack[stack.index(t):] + [t]
            if t not in state:
                found = visit(t)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def test_no_import_cycle():
    cycle = _cycle()
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("name", sorted(NAMES))
def test_every_module_is_short_and_states_its_job(name):
    text = NAMES[name].read_text()
    lines = text.count("\n")
    assert lines <= 600, f"{name} has {lines} lines: split it by job (600 at most)"
    assert ast.get_docstring(ast.parse(text)), f"{name} has no docstring stating its job"


#: the solver's core: relations on sizes in, sets of sizes out; it knows nothing of models or reports,
#: so that the tracer may ask it whether a condition can hold at all
SOLVER_CORE = ("symshape.solve.conditions", "symshape.solve.one_dim", "symshape.solve.many_dim",
               "symshape.solve.solver")
FOUNDATION = ("symshape.symbols", "symshape.floors", "symshape.evaluate", "symshape.decide", "symshape.monotone",
              "symshape.sets", "symshape.printing") + SOLVER_CORE


@pytest.mark.parametrize("upstream, downstream", [
    ("symshape.report", "symshape.render"), ("symshape.report", "symshape.solve"),
    ("symshape.report", "symshape.verify"), ("symshape.report", "symshape.trace"),
    ("symshape.rules", "symshape.render"), ("symshape.rules", "symshape.solve"),
    ("symshape.trace", "symshape.solve.questions"), ("symshape.trace", "symshape.render"),
    ("symshape.render", "symshape.solve"), ("symshape.render", "symshape.verify"),
    ("symshape.floors", "symshape.rules"), ("symshape.printing", "symshape.report"),
] + [(core, later) for core in FOUNDATION
     for later in ("symshape.report", "symshape.trace", "symshape.rules", "symshape.render", "symshape.verify",
                   "symshape.graph", "symshape.solve.questions")])
def test_data_flows_one_way(upstream, downstream):
    """Nothing upstream imports anything downstream (render and solve read reports, never the
    reverse; rules know nothing of rendering; the foundation, the solver's core included, knows
    nothing of models, reports or outputs)."""
    offenders = sorted(f"{n} imports {t}" for n, ts in GRAPH.items() if n == upstream or n.startswith(upstream + ".")
                       for t in ts if t == downstream or t.startswith(downstream + "."))
    assert not offenders, "; ".join(offenders)
