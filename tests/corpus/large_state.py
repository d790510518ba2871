"""Epochs that change a few megabytes of state in place: snapshots must leave it exactly as it was."""

import array
import hashlib

pixels = bytearray(range(256)) * 8192
weights = array.array("d", [0.5]) * 65536
table = {i: [i] * 4 for i in range(5000)}
for epoch in range(4):
    for chunk in range(0, len(pixels), 65536):
        pixels[chunk] = (pixels[chunk] + epoch + 1) % 256
    for i in range(0, len(weights), 4096):
        weights[i] *= 1.5
    for i in range(epoch, 5000, 97):
        table[i].append(epoch)
    digest = hashlib.sha256(
        bytes(pixels) + weights.tobytes() + repr(sorted(table.items())).encode()
    ).hexdigest()
    print("epoch", epoch, digest[:24])
print(len(pixels), sum(weights[:8192]), sum(len(v) for v in table.values()))
