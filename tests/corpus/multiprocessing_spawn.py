"""A spawn-context worker re-imports this script as __mp_main__ and runs a looping function."""

import multiprocessing as mp

print("module level runs as", __name__, flush=True)


def work(values, out):
    total = 0
    for v in values:
        total += v * v
    out.put((total, __name__))


if __name__ == "__main__":
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    for epoch in range(1):
        proc = ctx.Process(target=work, args=(list(range(epoch + 4)), results))
        proc.start()
        print("epoch", epoch, results.get(timeout=30))
        proc.join()
        print("exit code", proc.exitcode)
