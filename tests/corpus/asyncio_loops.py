"""Loops inside coroutines that suspend mid-iteration, async generators, and async for."""

import asyncio


async def ticker(name, n, log):
    for i in range(n):
        log.append(f"{name}{i}")
        await asyncio.sleep(0)
    return name * n


async def agen(n):
    for i in range(n):
        await asyncio.sleep(0)
        yield i * i


async def consume():
    out = []
    async for v in agen(4):
        for _ in range(2):
            out.append(v)
    return out


async def main():
    log = []
    results = await asyncio.gather(ticker("a", 3, log), ticker("b", 2, log))
    print("interleaved", log, results)
    print("async for", await consume())
    print("async comprehension", [v async for v in agen(3)])
    total = 0
    for epoch in range(2):
        batches = await asyncio.gather(*(ticker(str(k), k, []) for k in range(3)))
        total += sum(len(b) for b in batches)
        print("epoch", epoch, batches)
    return total


print("total", asyncio.run(main()))
