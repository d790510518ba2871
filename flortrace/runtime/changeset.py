"""Name the state a loop changes, capture it, and put it back into running frames.

An item is ``(where, scope, name)``: ``where`` is 'main' (the frame of the main loop) or 'block' (the frame of
the block's loop), ``scope`` is 'local' or 'global' relative to that frame, or ``module:NAME`` for a global of
another module of the user's project (a hand-written schedule's counter in a sibling module is training
state too). A payload captures each distinct object once (aliases share it), plus the global RNG states.
"""

from __future__ import annotations

import sys

from .. import state
from . import frames

MODULE = "module:"


def namespace(frame, modules=(), with_globals=True):
    """The state-like objects a frame can reach by name, and the globals of the project ``modules``
    (names): {(scope, name): obj}. ``with_globals=False`` leaves out the globals of a function frame (a
    library's module, whose globals are its own business)."""
    out = {}
    if with_globals and frames.is_function_frame(frame):
        for name, obj in frame.f_globals.items():
            if not name.startswith("__") and _is_state(obj):
                out[("global", name)] = obj
    for name, obj in frames.locals_of(frame).items():
        if not name.startswith("__") and _is_state(obj):
            out[("local", name)] = obj
    for module in modules:
        found = sys.modules.get(module)
        space = getattr(found, "__dict__", None)
        if space is None or space is frame.f_globals:
            continue
        for name, obj in list(space.items()):
            if not name.startswith("__") and _is_state(obj):
                out[(MODULE + module, name)] = obj
    return out


def lookup(frame, scope, name, local=None):
    """Return (scope, value) of an item: a module global, else the name as ``frame`` sees it (``local``: its
    locals read once, for many lookups)."""
    if scope.startswith(MODULE):
        space = getattr(sys.modules.get(scope[len(MODULE) :]), "__dict__", {})
        return scope, space.get(name, frames.MISSING)
    return frames.lookup(frame, name, local=local)


def label(scope, name):
    """How a person names an item: ``lr`` in the frame, ``sched_state._calls`` in another module."""
    return f"{scope[len(MODULE) :]}.{name}" if scope.startswith(MODULE) else name


def resolve(frame, names):
    """{(scope, name): obj} for ``names`` bound in ``frame`` (unbound names are left out)."""
    out, local = {}, frames.locals_of(frame)
    for name in names:
        scope, obj = frames.lookup(frame, name, local=local)
        if obj is not frames.MISSING and _is_state(obj):
            out[(scope, name)] = obj
    return out


def resolve_items(frame, items):
    """{(scope, name): obj} for ``(scope, name)`` items still bound to state-like objects."""
    out, local = {}, frames.locals_of(frame)
    for scope, name in items:
        found_scope, obj = lookup(frame, scope, name, local)
        if obj is not frames.MISSING and _is_state(obj):
            out[(found_scope, name)] = obj
    return out


def _is_state(obj):
    try:
        return state.is_state(obj)
    except Exception:
        return False


def fingerprints(items):
    """{key: (id, fingerprint)}: a rebinding or an in-place change both show as a difference."""
    out = {}
    for key, obj in items.items():
        try:
            out[key] = (id(obj), state.fingerprint(obj))
        except Exception:
            out[key] = (id(obj), object())
    return out


def changed(before, after):
    return {key for key, value in after.items() if before.get(key) != value}


def capture(items, alloc=None):
    """Capture ``{(where, scope, name): obj}``; returns (payload, problems naming what failed). The objects
    share one capture (``shared``), so what two names reach is captured and restored once. ``alloc`` gives
    memory for large copies (the writer's shared memory)."""
    distinct = sorted({id(obj): obj for obj in items.values()}.values(), key=_owner_first)
    try:
        records = state.capture_all(distinct, alloc)
    except Exception as exc:  # a user object whose state cannot be read
        records = [state.Unsupported(f"{type(exc).__name__}: {exc}")] * len(distinct)
    objects, index, problems = [], {}, []
    for obj, rec in zip(distinct, records, strict=True):
        if not isinstance(rec, Exception):
            index[id(obj)] = len(objects)
            objects.append(rec)
    names = []
    for (where, scope, name), obj in items.items():
        if id(obj) in index:
            names.append((where, scope, name, index[id(obj)]))
        else:
            problems.append(f"{name}: {records[distinct.index(obj)]}")
    names.sort(key=lambda entry: entry[3])  # restored in capture order: owners before references to them
    payload = {"objects": objects, "names": names, "rng": state.capture_rng(), "shared": True}
    return payload, sorted(set(problems))


def _owner_first(obj):
    """Modules and optimizers are captured first, so the parameters a loop variable or a list also holds
    belong to the module's record and are restored into the module's own tensors."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(obj, (torch.nn.Module, torch.optim.Optimizer)):
        return 0
    return 1


def restore(payload, frames_by_where):
    """Restore a payload in place into the frames given as {'main': frame, 'block': frame}: the names bound
    to live objects first, so that what a name still unbound reaches is restored into the live objects.
    Raises Unsupported, before changing anything, when an unbound name's object cannot be built."""
    shared = state.RestoreContext(records=payload["objects"]) if payload.get("shared") else None
    live, rebind, bound, later = {}, {}, [], []
    local = {where: frames.locals_of(frame) for where, frame in frames_by_where.items()}
    for entry in payload["names"]:
        where, scope, name, idx = entry
        frame = frames_by_where.get(where)
        if frame is None:
            continue
        _, current = lookup(frame, scope, name, local[where])
        if current is frames.MISSING:
            why = state.unbuildable(payload["objects"][idx])
            if why is not None:
                raise state.Unsupported(f"{name} is not bound here and {why}")
            later.append((entry, frame, current))
            continue
        bound.append((entry, frame, current))
    if shared is not None:  # what other objects hold is restored through them, where they hold it
        shared.bound = {getattr(payload["objects"][e[3]], "key", None): cur for e, _, cur in bound}
        bound.sort(key=lambda b: shared.referenced(getattr(payload["objects"][b[0][3]], "key", None)))
    for entry, frame, current in bound:
        _restore_one(payload, entry, frame, current, live, rebind, shared)
    for entry, frame, current in later:
        _restore_one(payload, entry, frame, current, live, rebind, shared)
    for frame, scope, values in rebind.values():
        if scope.startswith(MODULE):
            sys.modules[scope[len(MODULE) :]].__dict__.update(values)
        else:
            frames.bind(frame, values, scope)
    state.restore_rng(payload["rng"])


def _restore_one(payload, entry, frame, current, live, rebind, shared):
    where, scope, name, idx = entry
    key = getattr(payload["objects"][idx], "key", None)
    if idx in live:
        new = live[idx]
    elif shared is not None and key in shared.memo:  # restored already, inside an object that holds it
        new = live[idx] = shared.memo[key]
    elif current is frames.MISSING:
        new = live[idx] = state.materialize(payload["objects"][idx], shared)
    else:
        new = live[idx] = state.restore(current, payload["objects"][idx], shared)
    if new is not current:
        rebind.setdefault((id(frame), scope), (frame, scope, {}))[2][name] = new


def size(payload):
    return sum(state.nbytes(obj) for obj in payload["objects"])
