"""Code the script compiles at run time (exec, eval, compile) with loops, run from inside its own loops."""

namespace = {}
source = """
def scaled(values, k):
    out = []
    for v in values:
        out.append(v * k)
    return out
acc = 0
for i in range(4):
    acc += i
"""
exec(source, namespace)
print(namespace["acc"], namespace["scaled"]([1, 2], 3))

code = compile("[x * x for x in range(n)]", "<generated>", "eval")
for n in range(4):
    print(n, eval(code, {"n": n}))

shared = {"total": 0}
for step in range(3):
    exec("for j in range(step + 1):\n    total += j", {"step": step}, shared)
print("exec in loop", shared["total"])

try:
    exec("for q in range(3):\n    if q == 2:\n        raise LookupError(q)", {})
except LookupError as exc:
    print("raised from exec'd loop", exc, exc.__traceback__.tb_next.tb_frame.f_code.co_filename)
print(eval("sum(i for i in range(10) if i % 3)"))
