"""The package's shape: no import circles (imports inside functions included), no private name used outside
its module, and every benchmark a package folder with its own README."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "unlearn"


def module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules(root: Path) -> dict[str, Path]:
    return {module_name(root, p): p for p in sorted(root.rglob("*.py")) if "__pycache__" not in p.parts}


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, list[str]]]:
    """(imported module, names taken from it) for every import of a package module in ``path``, wherever it
    stands (module level or inside a function). ``from pkg import sub`` counts as an import of ``pkg.sub``."""
    def known(target: str) -> str | None:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        return target or None

    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(m, []) for a in node.names if (m := known(a.name))]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
                for _ in range(node.level - 1):
                    pkg = pkg.rpartition(".")[0]
                base = f"{pkg}.{base}" if node.module else pkg
            for a in node.names:
                sub = known(f"{base}.{a.name}")
                if sub == f"{base}.{a.name}":
                    out.append((sub, []))
                elif (m := known(base)) is not None:
                    out.append((m, [a.name]))
    return [(m, names) for m, names in out if m != name]


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package modules it imports. A package's ``__init__`` importing its own submodules, and a
    module importing its parent package (Python runs the parent first anyway), are structure, not edges."""
    modules = package_modules(root)
    graph = {}
    for name, path in modules.items():
        graph[name] = {m for m, _ in imports_of(name, path, modules)
                       if not m.startswith(name + ".") and not name.startswith(m + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def private_uses(root: Path) -> list[str]:
    """``from unlearn.x import _name`` and ``x._name`` (x an imported package module) outside x itself."""
    modules = package_modules(root)
    found = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        aliases = {}
        for m, names in imports_of(name, path, modules):
            found += [f"{name} imports {m}.{n}" for n in names if n.startswith("_") and not n.startswith("__")]
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name in modules and a.asname:
                        aliases[a.asname] = a.name
            elif isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:
                    if f"{node.module}.{a.name}" in modules:
                        aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__") and aliases[node.value.id] != name):
                found.append(f"{name} uses {aliases[node.value.id]}.{node.attr}")
    return sorted(set(found))


def test_no_import_circles():
    assert cycles(import_graph(ROOT)) == []


def test_no_private_names_across_modules():
    assert private_uses(ROOT) == []


def write_package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "unlearn"
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def test_a_circle_through_a_function_level_import_is_found(tmp_path):
    root = write_package(tmp_path, {
        "__init__.py": "", "a.py": "from unlearn.b import f\n",
        "b.py": "def f():\n    from unlearn.c import g\n    return g\n", "c.py": "import unlearn.a\n", "d.py": "import unlearn.a\n"})
    assert cycles(import_graph(root)) == [["unlearn.a", "unlearn.b", "unlearn.c"]]


def test_a_package_importing_its_submodules_is_no_circle(tmp_path):
    root = write_package(tmp_path, {"__init__.py": "", "p/__init__.py": "from unlearn.p.x import X\n",
                                    "p/x.py": "from unlearn.p import y\nX = 1\n", "p/y.py": ""})
    assert cycles(import_graph(root)) == []


def test_private_names_across_modules_are_found(tmp_path):
    root = write_package(tmp_path, {"__init__.py": "", "a.py": "_hidden = 1\ndef _f():\n    return _hidden\n",
                                    "b.py": "from unlearn.a import _hidden\n",
                                    "c.py": "from unlearn import a\nx = a._f()\n", "d.py": "import unlearn.a as m\ny = m._hidden\n"})
    assert private_uses(root) == ["unlearn.b imports unlearn.a._hidden", "unlearn.c uses unlearn.a._f",
                                  "unlearn.d uses unlearn.a._hidden"]


@pytest.mark.parametrize("name", ["tofu", "muse", "wmdp", "unsafe"])
def test_each_benchmark_is_a_package_folder(name):
    from unlearn.benchmarks import BENCHMARKS, Benchmark

    folder = ROOT / "benchmarks" / name
    assert {"__init__.py", "benchmark.py", "data.py", "metrics.py", "README.md"} <= {p.name for p in folder.iterdir()}
    assert issubclass(BENCHMARKS.get(name), Benchmark)


def test_the_tier_declarations_import_nothing_of_the_package():
    """``unlearn/tiers.py`` is data every module may read, so it may not import the package (no circle can start there)."""
    modules = package_modules(ROOT)
    assert imports_of("unlearn.tiers", modules["unlearn.tiers"], modules) == []


@pytest.mark.parametrize("tier", ["tiny", "reduced", "full"])
def test_every_benchmark_has_a_buildable_recipe_in_every_tier(tier):
    """A registered benchmark without a recipe in a tier would fail only when that tier runs; here it fails at once,
    and so does a recipe whose fields the training or protocol classes do not take."""
    from unlearn.benchmarks import BENCHMARKS
    from unlearn.benchmarks.base import recipe_for
    from unlearn.tiers import TIERS, TINY_MODEL

    model = TINY_MODEL if tier == "tiny" else "smollm2-135m"
    for name in BENCHMARKS.names():  # recipe_for: a KeyError naming the tier and the benchmark where there is none
        for dry_run in (False, True):
            bench_profile = BENCHMARKS.get(name).make_profile(None, model, dry_run, None, "fp32",
                                                              None if tier == "tiny" else tier, "tofu")
            assert bench_profile.target.lr == recipe_for(TIERS[tier], name, dry_run).target["lr"]


def test_a_profile_takes_its_numbers_from_the_tier_declaration(monkeypatch):
    """The recipes are live data: changing the declaration changes the profile (nothing is copied elsewhere)."""
    import dataclasses

    from unlearn import tiers
    from unlearn.benchmarks.muse.benchmark import muse_profile
    from unlearn.benchmarks.tofu.benchmark import profile_for

    tiny = tiers.TIERS["tiny"]
    tofu = dataclasses.replace(tiny.recipes["tofu"], target=dict(tiny.recipes["tofu"].target, epochs=7))
    muse = dataclasses.replace(tiny.recipes["muse"], protocol=dict(tiny.recipes["muse"].protocol, batch_size=3))
    monkeypatch.setitem(tiers.TIERS, "tiny", dataclasses.replace(tiny, recipes=dict(tiny.recipes, tofu=tofu, muse=muse)))
    assert profile_for(tiers.TINY_MODEL, False, None).target.epochs == 7
    assert muse_profile(tiers.TINY_MODEL, False, None).protocol.batch_size == 3
    monkeypatch.undo()
    assert profile_for(tiers.TINY_MODEL, False, None).target.epochs == 20


def test_the_tiny_tiers_control_steps_at_the_largest_lr_of_the_methods_it_is_compared_with():
    """A fair control: on every benchmark the tiny tier's finetune lr is the largest lr at which a tuned method
    takes plain AdamW steps on every weight (rmu's updates three layers' MLPs under a representation loss, dsu's
    forget_lr a separate adapter, trou's steps are shrunk or rejected by its trust region on the retain NLL). A
    control slower than the methods would "not forget" by stepping less."""
    from unlearn.benchmarks import BENCHMARKS
    from unlearn.benchmarks.base import method_settings
    from unlearn.tiers import TINY_MODEL

    # no plain all-weights AdamW lr of their own (iwap prunes; trou's steps pass a trust region)
    restricted = {"rmu", "dsu", "iwap", "trou", "finetune", "retrain"}
    for name in BENCHMARKS.names():
        profile = BENCHMARKS.get(name).make_profile(None, TINY_MODEL, False, None, "fp32", None, "tofu")
        lrs = {}
        for m in profile.method_overrides:
            if m not in restricted:
                cfg, sched = method_settings(m, profile.method_overrides, None)
                lrs[m] = sched.get("lr", profile.unlearn.lr)  # the shared schedule's lr, as the method changes it
        assert {"grad_ascent", "grad_diff", "npo", "simnpo", "idk"} <= set(lrs), (name, lrs)
        cfg, _ = method_settings("finetune", profile.method_overrides, None)
        assert cfg.lr == max(lrs.values()), (name, cfg.lr, lrs)


def test_the_tiny_tiers_control_trains_the_largest_step_budget_of_the_methods():
    """A fair control, the other half: on every benchmark the tiny tier's finetune trains on as many rows as the
    longest method (epochs over the forget split, a retain batch beside each forget batch; dsu's forget phase and
    its equally long repair), not fewer (it would "not forget" by stepping less) and not several times more (it
    would forget by interference alone)."""
    from unlearn.benchmarks import BENCHMARKS
    from unlearn.benchmarks.base import method_settings
    from unlearn.tiers import TINY_MODEL

    for name in BENCHMARKS.names():
        profile = BENCHMARKS.get(name).make_profile(None, TINY_MODEL, False, None, "fp32", None, "tofu")
        epochs = {}
        for m in profile.method_overrides:
            if m in ("finetune", "retrain", "iwap"):  # iwap prunes: its only training is optional repair steps
                continue
            cfg, sched = method_settings(m, profile.method_overrides, None)
            own = getattr(cfg, "forget_epochs", None) or getattr(cfg, "epochs", None)
            epochs[m] = own if own is not None else sched.get("epochs", profile.unlearn.epochs)
        assert {"grad_diff", "npo", "dsu", "trou"} <= set(epochs), (name, epochs)
        cfg, _ = method_settings("finetune", profile.method_overrides, None)
        assert cfg.matched_epochs == max(epochs.values()), (name, cfg.matched_epochs, epochs)
