"""A loader thread loops while the main thread runs the epoch loop; they hand batches over queues."""

import queue
import threading

requests, batches = queue.Queue(), queue.Queue()


def loader(data, size):
    while True:
        epoch = requests.get()
        if epoch is None:
            break
        for start in range(0, len(data), size):
            batches.put((epoch, data[start : start + size]))
        batches.put(None)


def worker_sum(values, out, barrier):
    for pos, v in enumerate(values):
        out.append(v * v)
        if pos == 1:
            barrier.wait()


thread = threading.Thread(target=loader, args=(list(range(10)), 4), name="loader")
thread.start()
w = 0.0
for epoch in range(3):
    requests.put(epoch)
    seen = []
    while True:
        item = batches.get()
        if item is None:
            break
        got_epoch, batch = item
        for x in batch:
            w += 0.01 * x * (epoch + 1)
        seen.append(len(batch))
    print("epoch", epoch, "batches", seen, "w", round(w, 6))
requests.put(None)
thread.join()
print("loader alive after join:", thread.is_alive())

out, barrier = [], threading.Barrier(2)
t = threading.Thread(target=worker_sum, args=([1, 2, 3, 4], out, barrier))
t.start()
for _ in range(1):
    barrier.wait()
t.join()
print("worker results", out)
