"""The script changes directory during training; relative file access follows its cwd."""

import os

start = os.getcwd()
os.chdir(os.path.dirname(os.path.abspath(__file__)))
counts = []
for epoch in range(3):
    os.chdir("data")
    with open("lines.txt") as f:
        words = [line.split()[0] for line in f if line.strip() and not line.startswith("#")]
    os.chdir("..")
    for step in range(epoch + 1):
        counts.append(len(words[step:]))
    print("epoch", epoch, os.path.basename(os.getcwd()), words[epoch])
os.chdir(start)
print(counts, os.getcwd() == start)
