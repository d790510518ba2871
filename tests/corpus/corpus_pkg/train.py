"""A tiny trainer living in a package: epoch loop here, batch loop in util via a generator."""

from . import util


def fit(data, epochs):
    w = 0.0
    history = []
    for epoch in range(epochs):
        for batch in util.batches(data, 3):
            for x in batch:
                w += 0.01 * (x - w)
        history.append(round(w, 6))
    return w, history
