# known: 3.10 3.11 3.12 | before 3.13 reading a frame's f_locals refreshes the dict locals() returned
"""r02: a dict returned by locals() is not refreshed behind the script's back."""


def train():
    snap = locals()
    for epoch in range(2):
        for step in range(2):
            pass
    print(sorted(snap))


train()
