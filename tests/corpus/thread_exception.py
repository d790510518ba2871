"""An exception escapes a worker thread's loop (threading.excepthook prints it); the main thread carries on."""

import threading


def records(n):
    for i in range(n):
        if i == 2:
            raise ValueError(f"bad record {i} in {threading.current_thread().name}")
        yield i


def worker(out):
    for epoch in range(2):
        for item in records(4):
            out.append((epoch, item))


out = []
for epoch in range(2):
    for step in range(2):
        out.append(("main", epoch, step))
    thread = threading.Thread(target=worker, args=(out,), name=f"worker-{epoch}")
    thread.start()
    thread.join()
    print("epoch", epoch, out)
    out.clear()
