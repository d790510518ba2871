"""r15: a generated module with one function of ~25k instructions (long jumps need EXTENDED_ARG), while
and for loops with continue, break, else and finally, imported and run in a main loop."""

import importlib
import os

lines = ["def big(n):", "    total = 0", "    k = 0", "    while k < n:", "        k += 1"]
lines += [f"        total += k * {i} % 7" for i in range(1500)]
lines += ["        if k == 2:", "            continue", "        for j in range(2):"]
lines += [f"            total ^= j + {i}" for i in range(500)]
lines += ["            if j: break", "        else:", "            total += 1", "    else:", "        total += 5"]
lines += ["    for q in range(3):", "        try:", "            if q == 1: continue"]
lines += [f"            total -= q * {i}" for i in range(500)]
lines += ["        finally:", "            total += 1", "    return total", ""]
name = f"generated_big_{os.getpid()}"  # plain Python and flortrace run at once in this folder
with open(f"{name}.py", "w") as f:
    f.write("\n".join(lines) + "\n")
generated = importlib.import_module(name)
os.remove(f"{name}.py")

print(generated.big(3))
for e in range(2):
    for b in range(2):
        print(e, b, generated.big(2))
