"""The epoch loop lives in a generator that yields metrics each epoch; the script's loop consumes them."""


def fit(weights, data, epochs):
    for epoch in range(epochs):
        loss = 0.0
        for x, y in data:
            pred = weights[0] * x + weights[1]
            err = pred - y
            loss += err * err
            weights[0] -= 0.05 * err * x
            weights[1] -= 0.05 * err
        command = yield epoch, round(loss, 10)
        if command == "stop":
            return "stopped early"
    return "finished"


data = [(x, 2 * x + 1) for x in range(-3, 4)]
weights = [0.0, 0.0]
for epoch, loss in fit(weights, data, 3):
    for k in range(2):
        weights[k] = round(weights[k], 12)
    print("consumer saw epoch", epoch, "loss", loss, weights)

run = fit(weights, data, 10)
metrics = next(run)
while True:
    print("metrics", metrics)
    try:
        metrics = run.send("stop" if metrics[0] == 2 else None)
    except StopIteration as stop:
        print("generator returned", stop.value)
        break
