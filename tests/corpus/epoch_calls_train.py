"""An epoch loop calling train() and evaluate(), whose batch loops live in those functions."""

import random


class Model:
    def __init__(self, n):
        self.w = [0.0] * n
        self.b = 0.0
        self.updates = 0

    def predict(self, x):
        return sum(wi * xi for wi, xi in zip(self.w, x)) + self.b


class SGD:
    def __init__(self, model, lr):
        self.model, self.lr = model, lr

    def step(self, grad_w, grad_b):
        for k, g in enumerate(grad_w):
            self.model.w[k] -= self.lr * g
        self.model.b -= self.lr * grad_b
        self.model.updates += 1


def make_data(rng, n):
    rows = []
    for _ in range(n):
        x = [rng.random() for _ in range(2)]
        rows.append((x, 3 * x[0] - 2 * x[1] + 1))
    return rows


def train(model, opt, rows, batch_size):
    total = 0.0
    for start in range(0, len(rows), batch_size):
        gw, gb = [0.0, 0.0], 0.0
        for x, y in rows[start : start + batch_size]:
            err = model.predict(x) - y
            total += err * err
            gw = [g + err * xi for g, xi in zip(gw, x)]
            gb += err
        opt.step(gw, gb)
    return total / len(rows)


def evaluate(model, rows):
    errs = []
    for x, y in rows:
        errs.append(abs(model.predict(x) - y))
    return max(errs)


def main():
    rng = random.Random(3)
    train_rows, test_rows = make_data(rng, 40), make_data(rng, 10)
    model = Model(2)
    opt = SGD(model, 0.1)
    for epoch in range(5):
        rng.shuffle(train_rows)
        loss = train(model, opt, train_rows, 8)
        print(f"epoch {epoch} loss {loss:.8f} max_err {evaluate(model, test_rows):.8f}")
    print("updates", model.updates, [round(w, 8) for w in model.w], round(model.b, 8))


main()
