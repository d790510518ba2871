"""os.fork() inside the epoch loop: the child trains alone and leaves with os._exit; the parent goes on."""

import os


def train(weights, epochs, steps):
    for epoch in range(epochs):
        for step in range(steps):
            for k in range(len(weights)):
                weights[k] += (k + 1) * 0.001
    return [round(w, 6) for w in weights]


weights = [0.0, 0.0]
for epoch in range(3):
    for step in range(200):
        weights[step % 2] += 0.01
    if epoch == 1:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            result = train(list(weights), 4, 300)
            os.write(write_end, repr(result).encode())
            os._exit(7)
        os.close(write_end)
        with os.fdopen(read_end) as pipe:
            print("child trained", pipe.read())
        print("child exit code", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    print("epoch", epoch, [round(w, 6) for w in weights])
print("parent done", train(weights, 2, 10))
