"""The package's layout is its architecture: which code may import which, read from the source.

startup/ runs in every interpreter, worker/ inside Python workers on executors, driver/ and
tracking/ on the driver; trial/ (the protocol driver and worker share), compat/ and the top-level
shared modules are used by all of them. Imports
inside functions count as much as those at the top of a module. What the startup hook and a
worker load at run time is tested where they run (test_patch_orderings, test_dispatch).
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "runtime_ml"
HEAVY = {"hyperopt", "pyspark", "mlflow", "py4j", "cloudpickle", "numpy", "pandas", "sklearn"}
SHARED = {"runtime_ml", "runtime_ml.conf", "runtime_ml.errors", "runtime_ml.log", "runtime_ml.patching",
          "runtime_ml.policy", "runtime_ml.redaction", "runtime_ml.server_health"}


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path, top_level_only=False):
    """(imported module, line) for each import in the file; `from a import b` counts a.b, not a,
    when b is a module of this package (a package is loaded before its modules anyway)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = [f"{node.module}.{alias.name}" for alias in node.names
                          if f"{node.module}.{alias.name}" in MODULES]
            if len(submodules) < len(node.names):  # a name defined by the module itself
                found.append((node.module, node.lineno))
            found += [(name, node.lineno) for name in submodules]
    return found


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def offending(prefix, forbidden, top_level_only=False):
    return sorted(f"{name}:{line} imports {target}"
                  for name, path in MODULES.items() if name.startswith(prefix)
                  for target, line in imports_of(path, top_level_only)
                  if any(target == f or target.startswith(f + ".") for f in forbidden))


def test_worker_code_imports_nothing_of_the_driver_or_of_tracking():
    assert offending("runtime_ml.worker", ["runtime_ml.driver", "runtime_ml.tracking",
                                           "runtime_ml.cli", "runtime_ml.doctor"]) == []


def test_tracking_imports_nothing_of_the_driver():
    assert offending("runtime_ml.tracking", ["runtime_ml.driver", "runtime_ml.cli"]) == []


def test_shared_modules_compat_and_the_trial_protocol_import_no_layer():
    layers = ["runtime_ml.startup", "runtime_ml.driver", "runtime_ml.worker", "runtime_ml.tracking",
              "runtime_ml.cli", "runtime_ml.doctor"]
    for name in sorted(SHARED - {"runtime_ml"}) + ["runtime_ml.compat", "runtime_ml.trial"]:
        assert offending(name, layers) == [], name


def test_startup_code_imports_only_the_standard_library_and_shared_modules_at_load():
    """Its one hand-off to the driver is lazy: patching, once hyperopt.spark has loaded."""
    allowed_prefixes = ("runtime_ml.startup",)
    bad = sorted(f"{name}:{line} imports {target}"
                 for name, path in MODULES.items() if name.startswith("runtime_ml.startup")
                 for target, line in imports_of(path, top_level_only=True)
                 if target.split(".")[0] in HEAVY
                 or (target.startswith("runtime_ml") and target not in SHARED
                     and not target.startswith(allowed_prefixes)))
    assert bad == []


def test_startup_hands_over_to_the_driver_only_through_the_patch():
    """Inside functions, startup code reaches the driver only to patch hyperopt.spark as it loads."""
    reached = {target for name, path in MODULES.items() if name.startswith("runtime_ml.startup")
               for target, _ in imports_of(path)
               if target.startswith(("runtime_ml.driver", "runtime_ml.worker", "runtime_ml.tracking"))}
    assert reached <= {"runtime_ml.driver", "runtime_ml.driver.patch"}


def test_the_import_graph_has_no_cycle():
    graph = {name: {t for t, _ in imports_of(path) if t in MODULES and t != name}
             for name, path in MODULES.items()}
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for target in graph[node]:
            if state.get(target) == "open":
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target, stack + [target])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def room(module):
    """The package a module lives in (driver, worker, ...), or the shared module itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 else module


def names_used_from_other_rooms(name, path):
    """(module, name) of every name this module takes from a module in another room: imported
    by name (`from runtime_ml.x.y import f`), or read off an imported module (`y.f`)."""
    tree = ast.parse(path.read_text())
    used, aliases = set(), {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                module = f"{node.module}.{alias.name}"
                if module in MODULES:
                    aliases[alias.asname or alias.name] = module
                elif node.module in MODULES:
                    used.add((node.module, alias.name))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
                node.value.id in aliases:
            used.add((aliases[node.value.id], node.attr))
    return {(module, used_name) for module, used_name in used if room(module) != room(name)}


def untyped(function):
    arguments = [a for a in (*function.args.posonlyargs, *function.args.args,
                             *function.args.kwonlyargs) if a.arg not in ("self", "cls")]
    return any(a.annotation is None for a in arguments) or \
        (function.returns is None and function.name != "__init__")


def test_every_function_another_room_calls_has_type_hints():
    """What one package (or shared module) offers another is typed: its functions, and the
    __init__ and public methods of its classes; mypy checks them in `make test`."""
    missing = set()
    for name, path in MODULES.items():
        for module, used in names_used_from_other_rooms(name, path):
            for node in ast.parse(MODULES[module].read_text()).body:
                if isinstance(node, ast.FunctionDef) and node.name == used and untyped(node):
                    missing.add(f"{module}.{used}")
                elif isinstance(node, ast.ClassDef) and node.name == used:
                    missing.update(f"{module}.{used}.{method.name}" for method in node.body
                                   if isinstance(method, ast.FunctionDef) and untyped(method)
                                   and (method.name == "__init__"
                                        or not method.name.startswith("_")))
    assert sorted(missing) == []


NAMEDTUPLE_API = {"_replace", "_asdict", "_fields", "_make"}  # public, underscored against clashes


def is_private(name):
    return isinstance(name, str) and name.startswith("_") and not name.endswith("__") \
        and name not in NAMEDTUPLE_API


def private_reads(path):
    """`x._name` (but on self or cls, and namedtuple's own API), and reads of a private attribute
    by name, silent defaults included: getattr(x, "_name"[, default]), hasattr(x, "_name"),
    x.__dict__.get("_name")."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute):
            owner = node.value.id if isinstance(node.value, ast.Name) else None
            hit = is_private(node.attr) and owner not in ("self", "cls")
        elif isinstance(node, ast.Call):
            func, args = node.func, node.args
            by_name = isinstance(func, ast.Name) and func.id in ("getattr", "hasattr") \
                and len(args) >= 2 and isinstance(args[1], ast.Constant) \
                and is_private(args[1].value)
            from_dict = isinstance(func, ast.Attribute) and func.attr == "get" \
                and isinstance(func.value, ast.Attribute) and func.value.attr == "__dict__" \
                and args and isinstance(args[0], ast.Constant) and is_private(args[0].value)
            hit = by_name or from_dict
        else:
            hit = False
        if hit:
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_other_packages_private_names_are_reached_only_through_compat():
    """compat/ is the one door to private names (each behind a check, with a fallback and a test
    in test_compat.py that fails loudly when it moves); elsewhere no `x._name` and no silent read
    of one."""
    assert private_reads(MODULES["runtime_ml.compat.spark_trials"]), "the check finds nothing"
    found = {name: private_reads(path) for name, path in MODULES.items()
             if not name.startswith("runtime_ml.compat")}
    assert {name: lines for name, lines in found.items() if lines} == {}
