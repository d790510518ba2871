"""The package's imports go one way: down a declared order of layers, with no cycle anywhere.

Every ``import`` in every module is read from its syntax tree (function-level imports too, since a lazy
import is still a dependency), resolved to the module it names inside the package, and checked.
"""

from __future__ import annotations

import ast
from pathlib import Path

import flortrace

PACKAGE = Path(flortrace.__file__).parent

# Top to bottom: a module may import its own layer or any layer below, never one above. A name stands for
# a module and, when it is a folder, everything in it.
LAYERS = [
    ["flortrace.__main__", "flortrace.cli"],  # argv, the one error funnel
    ["flortrace.control", "flortrace.verbs"],  # record, replay, travel; the reading verbs
    ["flortrace.console", "flortrace.recording"],  # the pdb front end; what a recording needs around it
    ["flortrace"],  # the script's API: log, breakpoint, replaying, dataframe
    ["flortrace.export"],  # exporters: a library
    ["flortrace.driver", "flortrace.replay"],  # run under a session; plans and executors
    ["flortrace.runtime"],  # what the patched hooks call: recorder, replayer, time travel
    ["flortrace.instrument", "flortrace.state"],  # bytecode; snapshots of objects
    ["flortrace.store"],  # catalog, blobs, writer, snapshot format
    ["flortrace.replay.epochs", "flortrace.replay.runs"],  # spec grammars: the recorder and catalog read them
    ["flortrace.runner", "flortrace.config", "flortrace.exceptions", "flortrace.version"],  # the floor
    ["flortrace.frameworks", "flortrace.scriptargs"],  # facts about trainers; reading a run's arguments
]


def module_names():
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = ["flortrace", *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = module_names()


def imports(name, path):
    """The package's modules that ``name`` imports, anywhere in its file."""
    is_package = path.name == "__init__.py"
    here = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:  # `from . import state` names a module; `from .x import f` names x
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {m for m in found if m in MODULES and m != name}


def layer_of(name):
    best = None
    for index, names in enumerate(LAYERS):
        for prefix in names:
            if (name == prefix or name.startswith(prefix + ".")) and (best is None or len(prefix) > best[1]):
                best = (index, len(prefix))
    assert best is not None, f"{name} is in no layer: add it to LAYERS"
    return best[0]


GRAPH = {name: imports(name, path) for name, path in MODULES.items()}


def test_every_module_has_a_layer():
    for name in MODULES:
        layer_of(name)


def test_no_upward_import():
    upward = [
        f"{name} (layer {layer_of(name)}) imports {dep} (layer {layer_of(dep)})"
        for name, deps in sorted(GRAPH.items())
        for dep in sorted(deps)
        if layer_of(dep) < layer_of(name)
    ]
    assert upward == []


def test_no_import_cycle():
    cycles, state = [], {}

    def visit(name, stack):
        state[name] = "open"
        stack.append(name)
        for dep in sorted(GRAPH[name]):
            if state.get(dep) == "open":
                cycles.append(" -> ".join([*stack[stack.index(dep) :], dep]))
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[name] = "done"

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [])
    assert cycles == []


def test_the_walk_sees_imports():
    """The checks above would pass on a walk that finds nothing: it finds the imports it must."""
    assert "flortrace.runner" in GRAPH["flortrace.driver"]
    assert "flortrace.runtime.session" in GRAPH["flortrace.runtime.replayer"]
    assert "flortrace.state" in GRAPH["flortrace.runtime.replayer"]  # `from .. import state`
