"""Thousands of tiny epochs (an RL-style episode loop) with a few steps each and growing state."""

import random

rng = random.Random(5)
q = {}
returns = []
for episode in range(3000):
    state, total = 0, 0.0
    for step in range(4):
        action = rng.randrange(2)
        reward = 1.0 if action == state % 2 else -0.5
        key = (state, action)
        q[key] = q.get(key, 0.0) + 0.1 * (reward - q.get(key, 0.0))
        state = (state * 3 + action) % 7
        total += reward
    returns.append(total)
    if episode % 1000 == 999:
        print("episode", episode, "mean return", round(sum(returns[-1000:]) / 1000, 6))
print(len(q), round(sum(q.values()), 10))
