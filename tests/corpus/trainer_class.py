"""A Trainer class: state on self, callbacks are lambdas, early stopping raises through the epoch loop."""

import random


class StopTraining(Exception):
    pass


class Loader:
    def __init__(self, rows, batch_size, seed):
        self.rows, self.batch_size = rows, batch_size
        self.rng = random.Random(seed)

    def __len__(self):
        return (len(self.rows) + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        order = list(range(len(self.rows)))
        self.rng.shuffle(order)
        for start in range(0, len(order), self.batch_size):
            yield [self.rows[i] for i in order[start : start + self.batch_size]]


class Linear:
    __slots__ = ("w", "b")

    def __init__(self):
        self.w, self.b = 0.0, 0.0

    def __call__(self, x):
        return self.w * x + self.b


class Trainer:
    def __init__(self, model, loader, lr):
        self.model, self.loader, self.lr = model, loader, lr
        self.history = {"loss": [], "lr": []}
        self.callbacks = [lambda t, e: t.history["lr"].append(t.lr), self.decay, self.early_stop]
        self.best, self.bad_epochs = float("inf"), 0

    def decay(self, trainer, epoch):
        if epoch and epoch % 2 == 0:
            self.lr *= 0.5

    def early_stop(self, trainer, epoch):
        if self.history["loss"][-1] > self.best - 1e-4:
            self.bad_epochs += 1
            if self.bad_epochs >= 2:
                raise StopTraining(f"no progress at epoch {epoch}")
        else:
            self.best, self.bad_epochs = self.history["loss"][-1], 0

    def train_epoch(self):
        total, count = 0.0, 0
        for batch in self.loader:
            gw = gb = 0.0
            for x, y in batch:
                err = self.model(x) - y
                gw += 2 * err * x / len(batch)
                gb += 2 * err / len(batch)
                total += err * err
                count += 1
            self.model.w -= self.lr * gw
            self.model.b -= self.lr * gb
        return total / count

    def fit(self, epochs):
        try:
            for epoch in range(epochs):
                self.history["loss"].append(self.train_epoch())
                for callback in self.callbacks:
                    callback(self, epoch)
                print(f"epoch {epoch} loss {self.history['loss'][-1]:.10f} lr {self.lr}")
        except StopTraining as exc:
            print("stopped:", exc)
        return self


rows = [(x / 10, 3 * x / 10 - 1) for x in range(-10, 11)]
trainer = Trainer(Linear(), Loader(rows, 5, seed=4), lr=0.3).fit(40)
print(
    "batches per epoch", len(trainer.loader), "w", round(trainer.model.w, 10), "b", round(trainer.model.b, 10)
)
print("lr history", trainer.history["lr"][:6], "epochs run", len(trainer.history["loss"]))
