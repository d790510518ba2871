"""Seeded random numbers drawn across an epoch loop: the global generator and a Random instance."""

import random

random.seed(1234)
local = random.Random(99)
state_at_start = random.getstate()
weights = [random.random() for _ in range(3)]
initial = list(weights)
for epoch in range(4):
    order = list(range(6))
    random.shuffle(order)
    for step, idx in enumerate(order):
        noise = random.gauss(0, 1)
        weights[idx % 3] += 0.01 * noise
    drop = local.random() < 0.5
    print(epoch, order, [round(w, 10) for w in weights], drop, random.randint(0, 10**6))
print("choice", random.choice("abcdef"), local.sample(range(100), 3))
random.setstate(state_at_start)
print("replayed first draws", [random.random() for _ in range(3)] == initial)
print("getrandbits", random.getrandbits(64))
