"""Tests for flortrace.instrument.effects: loop bodies compiled from real snippets on the running Python."""

from __future__ import annotations

import argparse
import dataclasses
import dis
import inspect
import json.encoder
import sys
import textwrap
import types
from collections.abc import Iterable, Set

import bytecode
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flortrace.instrument.effects import LoopEffects, analyze

Pairs = list[tuple[str, object]]


def find_code(source: str, name: str) -> types.CodeType:
    """The code object called ``name`` compiled from ``source`` (``<module>`` for the module itself)."""
    todo = [compile(textwrap.dedent(source), "<snippet>", "exec")]
    while todo:
        code = todo.pop()
        if code.co_name == name:
            return code
        todo.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    raise LookupError(name)


def loop_parts(code: types.CodeType, which: int = 0, handlers: bool = True) -> tuple[Pairs, Pairs]:
    """Body and after-code of the ``which``-th FOR_ITER of ``code`` as ``dis`` pairs.

    The body is what lies between FOR_ITER and its exit, plus (with ``handlers``) the exception handlers
    of try blocks in it, which 3.12+ moves to the end of the function."""
    instrs = list(dis.get_instructions(code))
    at = {ins.offset: k for k, ins in enumerate(instrs)}
    head = [k for k, ins in enumerate(instrs) if ins.opname == "FOR_ITER"][which]
    exit_ = at[instrs[head].argval]
    body = set(range(head + 1, exit_))
    has_table = handlers and sys.version_info >= (3, 11)
    entries = list(dis.Bytecode(code).exception_entries) if has_table else []
    grew = True
    while grew:
        grew = False
        for entry in entries:
            target = at[entry.target]
            covered = {k for k in body if entry.start <= instrs[k].offset < entry.end}
            if covered and target > exit_ and target not in body:
                k = target
                while k < len(instrs) and k not in body:
                    body.add(k)
                    if instrs[k].opname in ("RERAISE", "RETURN_VALUE", "RETURN_CONST") or (
                        instrs[k].opname.startswith("JUMP") and "IF" not in instrs[k].opname
                    ):
                        break
                    k += 1
                grew = True

    def pairs(indices: Iterable[int]) -> Pairs:
        return [(instrs[k].opname, instrs[k].argval) for k in sorted(indices)]

    return pairs(body), pairs(k for k in range(exit_, len(instrs)) if k not in body)


def check(
    source: str,
    *,
    name: str = "f",
    rebound: Set[str] = frozenset(),
    mutated: Set[str] = frozenset(),
    passed: Set[str] = frozenset(),
    called: Set[str] = frozenset(),
    read: Set[str] | None = None,
    read_after: Set[str] | None = None,
    globals_: Set[str] | None = None,
) -> LoopEffects:
    body, after = loop_parts(find_code(source, name))
    result = analyze(body, after)
    assert analyze(without_targets(body), without_targets(after)) == result
    assert result.rebound == rebound
    assert result.mutated == mutated
    assert result.passed == passed
    assert result.called == called
    if read is not None:
        assert result.read == read
    if read_after is not None:
        assert result.read_after == read_after
    if globals_ is not None:
        assert result.globals_ == globals_
    return result


def test_counters():
    result = check(
        """
        def f(data):
            n = 0
            total = 0
            for x in data:
                n += 1
                total = total + x
            return n, total
        """,
        rebound={"x", "n", "total"},
        mutated={"n"},
        read={"n", "total", "x"},
        read_after={"n", "total"},
        globals_=set(),
    )
    assert result.changed() == {"x", "n", "total"}


def test_augmented_total_of_method_result():
    check(
        """
        def f(losses):
            total = 0.0
            for loss in losses:
                total += loss.item()
            return total
        """,
        rebound={"loss", "total"},
        mutated={"total", "loss"},
        read={"total", "loss"},
        read_after={"total"},
    )


def test_optimizer_step():
    check(
        """
        def f(loader, model, opt, loss_fn):
            for x, y in loader:
                opt.zero_grad()
                loss = loss_fn(model(x), y)
                loss.backward()
                opt.step()
        """,
        rebound={"x", "y", "loss"},
        mutated={"opt", "loss"},
        passed={"x", "y"},
        called={"loss_fn", "model"},
        read={"opt", "loss_fn", "model", "x", "y", "loss"},
        read_after=set(),
    )


def test_model_train_and_builtins():
    check(
        """
        def f(model, epochs):
            for epoch in range(epochs):
                model.train()
                print(epoch, len(model.layers))
        """,
        rebound={"epoch"},
        mutated={"model"},
        passed={"epoch", "model"},
        read={"model", "print", "epoch", "len"},
        globals_={"print", "len"},
    )


def test_append_and_subscript_store():
    check(
        """
        def f(data, history, d, k):
            for x in data:
                history.append(x)
                d[k] = x
                d[k:] = [x]
        """,
        rebound={"x"},
        mutated={"history", "d"},
        passed={"x"},
        read={"history", "d", "k", "x"},
    )


def test_augmented_attribute_in_method():
    check(
        """
        class Trainer:
            def f(self, grads, lr):
                for g in grads:
                    self.w -= lr * g
                    self.seen[g] += 1
        """,
        rebound={"g"},
        mutated={"self"},
        read={"self", "lr", "g"},
    )


def test_attribute_chain_store_and_call():
    check(
        """
        def f(data, x, opt):
            for _ in data:
                x.a.b = 1
                opt.state.inner.step()
                del x.c
        """,
        rebound={"_"},
        mutated={"x", "opt"},
    )


def test_tuple_unpacking_targets():
    check(
        """
        def f(pairs):
            a, b = 0, 1
            for i, (x, y) in enumerate(pairs):
                a, b = b, a + b
                first, *rest = x
            return a
        """,
        rebound={"i", "x", "y", "a", "b", "first", "rest"},
        read={"a", "b", "x"},
        read_after={"a"},
    )


def test_nested_loops():
    check(
        """
        def f(loader, params, lr):
            for batch in loader:
                for p in params:
                    p -= lr * p.grad
                n = 0
                for i, q in enumerate(batch):
                    n += q
                    if n > 10:
                        break
        """,
        rebound={"batch", "p", "n", "i", "q"},
        mutated={"params", "p", "n"},
        passed={"batch"},
        read={"params", "p", "lr", "batch", "n", "q", "enumerate"},
    )


def test_with_blocks():
    check(
        """
        import torch

        def f(loader, model, path):
            for x in loader:
                with torch.no_grad():
                    out = model(x)
                with open(path) as fh:
                    text = fh.read()
        """,
        rebound={"x", "out", "fh", "text"},
        mutated={"torch", "fh"},
        passed={"x", "path"},
        called={"model"},
        globals_={"torch", "open"},
    )


def test_try_except_finally():
    check(
        """
        def f(items, log):
            count = 0
            for item in items:
                try:
                    value = parse(item)
                except ValueError as err:
                    log.append(err)
                    value = None
                finally:
                    count += 1
            return count
        """,
        rebound={"item", "value", "err", "count"},
        mutated={"log", "count"},
        passed={"item", "err"},
        called={"parse"},
        read={"parse", "item", "ValueError", "log", "err", "count"},
        globals_={"parse", "ValueError"},
    )


def test_global_store():
    check(
        """
        def f(data):
            global step
            for x in data:
                step += 1
                last = x
        """,
        rebound={"x", "step", "last"},
        mutated={"step"},
        globals_={"step"},
    )


def test_nonlocal_store():
    check(
        """
        def outer():
            best = None
            def f(data):
                nonlocal best
                for x in data:
                    if best is None or x > best:
                        best = x
            return f
        """,
        rebound={"x", "best"},
        read={"best", "x"},
        globals_=set(),
    )


def test_comprehensions_in_body():
    check(
        """
        def f(batches, r, acc, scale):
            for b in batches:
                ys = [i * b for i in r if i]
                acc.extend(y * scale for y in ys)
                [acc.append(1) for _ in r]
                totals = {k: v for k, v in zip(r, ys)}
        """,
        rebound={"b", "ys", "totals"},
        mutated={"r", "acc", "ys"},
        passed={"r", "ys"},
        read={"r", "b", "acc", "ys", "scale", "zip"},
    )


def test_comprehension_passes_items_of_its_iterable():
    check(
        """
        def f(data, xs):
            for _ in data:
                out = [g(x) for x in xs]
        """,
        rebound={"_", "out"},
        mutated={"xs"},
        passed={"xs"},
        called={"g"},
    )


def test_comprehension_variable_shadowing_a_local():
    check(
        """
        def f(data, r):
            i = 0
            for x in data:
                i = i + 1
                squares = [i * i for i in r]
            return i
        """,
        rebound={"x", "i", "squares"},
        mutated={"r"},
        read={"i", "r"},
        read_after={"i"},
    )


def test_del_statements():
    check(
        """
        def f(data, d, k):
            for x in data:
                tmp = x
                del tmp
                del d[k]
        """,
        rebound={"x", "tmp"},
        mutated={"d"},
    )


def test_walrus():
    check(
        """
        def f(data):
            total = 0
            for x in data:
                if (n := len(x)) > 3:
                    total += n
        """,
        rebound={"x", "n", "total"},
        mutated={"total"},
        passed={"x"},
    )


def test_star_args_and_keywords():
    check(
        """
        def f(data, args, kw, z):
            for x in data:
                g(*args, **kw)
                h(x, y=z)
                o.m(*args)
        """,
        rebound={"x"},
        mutated={"o"},
        passed={"args", "kw", "x", "z"},
        called={"g", "h"},
    )


def test_both_branches_of_conditional_and_boolean_arguments():
    check(
        """
        def f(data, a, b, c, d, e):
            for x in data:
                g(a if c else b, d or e)
        """,
        rebound={"x"},
        passed={"a", "b", "d", "e"},
        called={"g"},
    )


def test_function_defined_in_body():
    check(
        """
        def f(data, log):
            for x in data:
                def callback():
                    log.append(x)
                callback()
        """,
        rebound={"x", "callback"},
        mutated={"log"},
        passed={"x"},
        called={"callback"},
        read={"log", "x", "callback"},
    )


def test_imports_decorators_and_classes_in_body():
    check(
        """
        def f(data):
            for x in data:
                import os.path as osp
                from json import dumps as to_json
                import collections.abc
                @register
                def handler():
                    pass
                class Local(Base):
                    pass
        """,
        rebound={"x", "osp", "to_json", "collections", "handler", "Local"},
        passed={"Base"},
        called={"register"},
        read={"register", "Base", "__name__"},  # the class body reads __name__ for __module__
    )


def test_module_level_loop():
    check(
        """
        model = Model()
        for epoch in range(3):
            model.train()
            print(epoch)
        print(model, epoch)
        """,
        name="<module>",
        rebound={"epoch"},
        mutated={"model"},
        passed={"epoch"},
        read={"model", "print", "epoch"},
        read_after={"model", "print", "epoch"},
        globals_=set(),
    )


def test_break_and_continue():
    check(
        """
        def f(data, seen):
            for x in data:
                if x in seen:
                    continue
                seen.add(x)
                if len(seen) > 3:
                    break
        """,
        rebound={"x"},
        mutated={"seen"},
        passed={"seen", "x"},
    )


def test_lost_target_widens_to_every_loaded_name():
    result = analyze([("LOAD_FAST", "a"), ("POP_TOP", None), ("LOAD_FAST", "b"), ("STORE_SUBSCR", None)])
    assert result.mutated == {"a", "b"}


def test_odd_input_does_not_raise():
    result = analyze(
        [
            ("NOT_AN_OPCODE", 1),
            ("CALL", 7),
            ("BINARY_OP", None),
            ("UNPACK_EX", "x"),
            ("LOAD_GLOBAL", (True, "g")),
            ("LOAD_ATTR", (False, "a")),
            (None, None),
            ("STORE_FAST", ("a", "b")),
            ("RETURN_VALUE", None),
            ("END_FOR", None),
        ]
    )
    assert "g" in result.read


ARGS = st.one_of(
    st.none(),
    st.integers(-3, 70_000),
    st.sampled_from(["x", "y", "<genexpr>"]),
    st.tuples(st.booleans(), st.sampled_from(["x", "y"])),
    st.tuples(st.sampled_from(["x", "y"]), st.sampled_from(["x", "y"])),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(sorted(dis.opmap)), ARGS), max_size=40))
def test_any_instruction_sequence_is_analyzed(pairs):
    result = analyze(pairs, pairs)
    assert result.changed() <= result.read | result.rebound


BYTECODE_FORM_SNIPPETS = [
    """
    def f(loader, model, opt):
        for x, y in loader:
            opt.zero_grad()
            loss = crit(model(x), y) + reg(a if x else b, c or d)
            loss.backward()
            total += loss.item()
            self.w -= lr * g
    """,
    """
    def f(data, log, r):
        for x in data:
            def cb():
                log.append(x)
            ys = [cb(i) for i in r]
            acc = sum(y for y in ys)
            with torch.no_grad():
                q = g(*ys, **kw)
            del log[0]
    """,
    """
    class T:
        def f(self, data):
            for x in data:
                super().step(x)
                self.items[x] = [v for v in x]
    """,
]


@pytest.mark.parametrize("source", BYTECODE_FORM_SNIPPETS)
def test_bytecode_package_form_gives_the_same_effects(source):
    """Flags in LOAD_GLOBAL/LOAD_ATTR tuples, cell objects, labels and enums: same answer as ``dis``."""
    code = find_code(source, "f")
    instrs = list(bytecode.Bytecode.from_code(code))
    labels = {id(ins): k for k, ins in enumerate(instrs) if isinstance(ins, bytecode.Label)}
    head = next(k for k, ins in enumerate(instrs) if getattr(ins, "name", None) == "FOR_ITER")
    end = labels[id(instrs[head].arg)]

    def pairs(items):
        return [(ins.name, ins.arg) for ins in items if isinstance(ins, bytecode.Instr)]

    from_bytecode = analyze(pairs(instrs[head + 1 : end]), pairs(instrs[end:]))
    assert from_bytecode == analyze(*loop_parts(code, handlers=False))
    assert from_bytecode.changed()


def loops_of(code: types.CodeType):
    """Every FOR_ITER body of ``code`` and the code objects nested in it."""
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from loops_of(const)
    count = sum(ins.opname == "FOR_ITER" for ins in dis.get_instructions(code))
    for which in range(count):
        yield loop_parts(code, which)


@pytest.mark.parametrize("module", [argparse, dataclasses, json.encoder, textwrap])
def test_real_modules(module):
    code = compile(inspect.getsource(module), module.__file__, "exec")
    results = [analyze(body, after) for body, after in loops_of(code)]
    assert results
    for result in results:
        assert result.changed() <= result.read | result.rebound


def without_targets(pairs: Pairs) -> Pairs:
    """Jump arguments dropped, as a caller that does not pass them gives the pairs."""
    return [(opname, None if opname in JUMPS else arg) for opname, arg in pairs]


JUMPS = {dis.opname[op] for op in dis.hasjrel + dis.hasjabs}


NAMES = st.sampled_from(["a", "b", "c", "d", "e"])
ATTRS = st.sampled_from(["p", "q"])
METHODS = st.sampled_from(["step", "append"])


@dataclasses.dataclass(frozen=True)
class Expr:
    """Generated source with what analyze must find: names its value comes from, names it passes to
    calls, names it calls methods on."""

    text: str
    roots: frozenset[str] = frozenset()
    passed: frozenset[str] = frozenset()
    mutated: frozenset[str] = frozenset()


def _name(name: str) -> Expr:
    return Expr(name, frozenset({name}))


def _attr(name: str, attr: str) -> Expr:
    return Expr(f"{name}.{attr}", frozenset({name}))


def _item(name: str, index: Expr) -> Expr:
    return Expr(f"{name}[{index.text}]", frozenset({name}), index.passed, index.mutated)


def _call(arg: Expr) -> Expr:
    return Expr(f"g({arg.text})", frozenset(), arg.passed | arg.roots, arg.mutated)


def _method(name: str, method: str, arg: Expr) -> Expr:
    return Expr(f"{name}.{method}({arg.text})", frozenset(), arg.passed | arg.roots, arg.mutated | {name})


def _combine(template: str, keep_roots: bool, *parts: Expr) -> Expr:
    roots = frozenset().union(*(part.roots for part in parts)) if keep_roots else frozenset()
    return Expr(
        template.format(*(part.text for part in parts)),
        roots,
        frozenset().union(*(part.passed for part in parts)),
        frozenset().union(*(part.mutated for part in parts)),
    )


def _conditional(then: Expr, test: Expr, other: Expr) -> Expr:
    both = _combine("({} if {} else {})", True, then, test, other)
    return dataclasses.replace(both, roots=then.roots | other.roots)


def expressions(depth: int = 2) -> st.SearchStrategy[Expr]:
    leaf = st.one_of(st.builds(_name, NAMES), st.builds(_attr, NAMES, ATTRS))  # constants would be folded
    if depth == 0:
        return leaf
    inner = expressions(depth - 1)
    return st.one_of(
        leaf,
        st.builds(_item, NAMES, inner),
        st.builds(_call, inner),
        st.builds(_method, NAMES, METHODS, inner),
        st.builds(_combine, st.just("({} + {})"), st.just(False), inner, inner),
        st.builds(_conditional, inner, inner, inner),
        st.builds(_combine, st.just("({} or {})"), st.just(True), inner, inner),
        st.builds(_combine, st.just("[{}, {}]"), st.just(True), inner, inner),
    )


VALUES = expressions()
INDICES = expressions(1)


@st.composite
def statements(draw) -> tuple[str, set[str], set[str], set[str]]:
    """A statement, and the names it must rebind, mutate and pass."""
    name, other, attr, method = draw(NAMES), draw(NAMES), draw(ATTRS), draw(METHODS)
    value, index = draw(VALUES), draw(INDICES)
    text, rebound, mutated, passed = draw(
        st.sampled_from(
            [
                (f"{name} = {value.text}", {name}, set(), set()),
                (f"{name}.{attr} = {value.text}", set(), {name}, set()),
                (f"{name}[{index.text}] = {value.text}", set(), {name} | index.mutated, index.passed),
                (f"{name}.{attr}.{method}({value.text})", set(), {name}, value.roots),
                (f"{name} += {value.text}", {name}, {name}, set()),
                (f"{name}.{attr} -= {value.text}", set(), {name}, set()),
                (f"{name}, {other} = {value.text}, {name}", {name, other}, set(), set()),
                (f"del {name}[{value.text}]", set(), {name}, set()),
                (f"g({value.text})", set(), set(), value.roots),
            ]
        )
    )
    return text, rebound, mutated | value.mutated, passed | value.passed


@settings(max_examples=100, deadline=None)
@given(st.lists(statements(), min_size=1, max_size=6), st.booleans())
def test_generated_snippets(snippet, in_function):
    lines = [line for line, _, _, _ in snippet]
    if in_function:
        body = "".join(f"        {line}\n" for line in lines)
        code = find_code(f"def f(a, b, c, d, e, data):\n    for it in data:\n{body}", "f")
    else:
        code = find_code("for it in data:\n" + "".join(f"    {line}\n" for line in lines), "<module>")
    body, after = loop_parts(code)
    for result in (analyze(body, after), analyze(without_targets(body), without_targets(after))):
        for _, rebound, mutated, passed in snippet:
            assert rebound <= result.rebound
            assert mutated <= result.mutated
            assert passed <= result.passed | result.mutated
        assert result.changed() <= result.read | result.rebound
