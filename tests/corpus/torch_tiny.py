# needs: torch
"""A tiny torch model: seeded init, dropout RNG, an optimizer aliasing the parameters, and torch settings."""

import torch

torch.manual_seed(0)
threads = torch.get_num_threads()
model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Dropout(0.5), torch.nn.Linear(4, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.5)
x, y = torch.randn(16, 3), torch.randn(16, 1)
first_weight = model[0].weight
for epoch in range(3):
    model.train()
    for start in range(0, 16, 4):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x[start : start + 4]), y[start : start + 4])
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        val = torch.nn.functional.mse_loss(model(x), y).item()
    print(f"epoch {epoch} val {val:.8f} rand {torch.rand(1).item():.8f}")
print("aliasing kept", first_weight is model[0].weight, first_weight is opt.param_groups[0]["params"][0])
print("grad enabled", torch.is_grad_enabled(), "threads same", torch.get_num_threads() == threads)
print("deterministic", torch.are_deterministic_algorithms_enabled(), torch.get_default_dtype())
print([round(v, 6) for v in model[2].weight.flatten().tolist()])
