# known: 3.10 3.11 3.12 | r02, the runtime part of issue 14: frame.f_locals reads refresh locals() snapshots
"""r02: a dict returned by locals() is not refreshed behind the script's back."""


def train():
    snap = locals()
    for epoch in range(2):
        for step in range(2):
            pass
    print(sorted(snap))


train()
