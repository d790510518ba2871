"""A fork-context pool maps a looping function inside the epoch loop; no child processes remain after."""

import multiprocessing as mp


def score(chunk):
    acc = 0
    for x in chunk:
        for k in range(3):
            acc += x * k
    return acc


def main():
    ctx = mp.get_context("fork")
    data = list(range(12))
    with ctx.Pool(2) as pool:
        for epoch in range(2):
            chunks = [data[i : i + 4] for i in range(0, len(data), 4)]
            print("epoch", epoch, pool.map(score, chunks), flush=True)
            data = [x + 1 for x in data]
    proc = ctx.Process(target=score, args=([1, 2],))
    proc.start()
    proc.join()
    print("child exit code", proc.exitcode)
    print("active children", len(mp.active_children()))


if __name__ == "__main__":
    main()
