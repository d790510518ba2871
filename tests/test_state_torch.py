"""Capture/restore and fingerprints of torch tensors, modules, optimizers, schedulers, scalers, generators,
DataLoaders; torch settings."""

import pickle
import threading

import pytest

from flortrace.state import (
    Unsupported,
    apply_torch_settings,
    capture,
    capture_rng,
    capture_torch_settings,
    fingerprint,
    is_state,
    materialize,
    restore,
    restore_rng,
)

torch = pytest.importorskip("torch")
nn = torch.nn


def roundtrip(c):
    """Pickle as the writer does (protocol 5, out-of-band buffers, read back as read-only bytes)."""
    buffers = []
    data = pickle.dumps(c, protocol=5, buffer_callback=buffers.append)
    return pickle.loads(data, buffers=[bytes(b.raw()) for b in buffers])


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.bn = nn.BatchNorm1d(8)
        self.drop = nn.Dropout(0.2)
        self.fc2 = nn.Linear(8, 4)
        self.register_buffer("scratch", torch.zeros(3), persistent=False)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        self.scratch += 1
        return self.fc2(self.drop(torch.relu(self.bn(self.fc1(x)))))


def train_step(model, opt, n=16):
    loss = model(torch.randn(n, 4)).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()


def snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_state(model, expected):
    state = model.state_dict()
    assert state.keys() == expected.keys()
    for k, v in expected.items():
        assert torch.equal(state[k], v), k


DTYPES = [
    torch.float32,
    torch.float64,
    torch.float16,
    torch.bfloat16,
    torch.int64,
    torch.int8,
    torch.uint8,
    torch.bool,
    torch.complex64,
    torch.float8_e4m3fn,
    torch.complex32,
]


@pytest.mark.filterwarnings("ignore:ComplexHalf support is experimental")
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(3, 5), (), (0, 2)])
def test_tensor_restored_in_place_for_every_dtype(dtype, shape):
    t = (torch.randn(shape) * 10).to(dtype)
    expected = t.clone()
    c = roundtrip(capture(t))
    t.copy_(torch.ones(shape).to(dtype))
    assert restore(t, c) is t
    assert t.dtype == dtype and torch.equal(t.view(-1).view(torch.uint8), expected.view(-1).view(torch.uint8))
    built = materialize(c)
    assert built.dtype == dtype and torch.equal(
        built.view(-1).view(torch.uint8), expected.view(-1).view(torch.uint8)
    )


def test_non_contiguous_tensor():
    base = torch.arange(12.0).reshape(3, 4)
    t = base.t()
    c = roundtrip(capture(t))
    base.zero_()
    assert restore(t, c) is t
    assert torch.equal(base, torch.arange(12.0).reshape(3, 4))


def test_parameter_grad_and_requires_grad():
    p = nn.Parameter(torch.randn(3))
    p.grad = torch.ones(3)
    grad = p.grad
    c = roundtrip(capture(p))
    with torch.no_grad():
        p.mul_(2)
    p.grad.fill_(5)
    assert restore(p, c) is p and p.grad is grad and torch.equal(grad, torch.ones(3))
    p.grad = None
    restore(p, c)
    assert torch.equal(p.grad, torch.ones(3))
    no_grad = roundtrip(capture(nn.Parameter(torch.zeros(3))))
    restore(p, no_grad)
    assert p.grad is None and p.requires_grad
    built = materialize(c)
    assert isinstance(built, nn.Parameter) and built.requires_grad and torch.equal(built.grad, torch.ones(3))


def test_materialized_tensors_do_not_alias_the_capture():
    c = roundtrip(capture({"t": torch.arange(4.0)}))
    built = materialize(c)
    built["t"] += 1
    assert torch.equal(materialize(c)["t"], torch.arange(4.0))


def test_shape_change_gives_a_new_tensor():
    c = capture(torch.arange(3.0))
    live = torch.zeros(5)
    out = restore(live, c)
    assert out is not live and torch.equal(out, torch.arange(3.0))


def test_sparse_tensor_is_unsupported():
    with pytest.raises(Unsupported, match="sparse"):
        capture(torch.eye(3).to_sparse())


def test_module_state_flags_grads_buffers_and_attributes():
    torch.manual_seed(0)
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    train_step(model, opt)
    model.drop.eval()
    expected = snapshot(model)
    grads = {k: p.grad.clone() for k, p in model.named_parameters()}
    weight = model.fc1.weight
    c = roundtrip(capture(model))
    model.train()
    for _ in range(3):
        train_step(model, opt)
    model.extra = 1
    model.fc2.weight.requires_grad_(False)  # frozen after the capture
    assert restore(model, c) is model
    assert model.fc1.weight is weight and opt.param_groups[0]["params"][0] is weight
    assert_same_state(model, expected)
    assert model.training and not model.drop.training and model.fc1.training
    assert model.calls == 1 and torch.equal(model.scratch, torch.ones(3)) and not hasattr(model, "extra")
    for k, p in model.named_parameters():
        assert p.requires_grad and torch.equal(p.grad, grads[k]), k
    with pytest.raises(Unsupported, match="Net"):
        materialize(c)


def test_module_attributes_that_are_not_plain_data_are_left_alone():
    model = nn.Linear(2, 2)
    model.group = threading.Lock()  # like DDP's process_group or reducer: cannot be captured
    model.history = [torch.zeros(1)]
    group = model.group
    c = roundtrip(capture(model))
    before = fingerprint(model)
    assert fingerprint(model) == before
    model.history.append(torch.ones(1))
    assert fingerprint(model) != before
    model.group = other = threading.Lock()
    restore(model, c)
    assert model.group is other and group is not other and len(model.history) == 1


def test_tied_weights_stay_tied():
    model = nn.Sequential(nn.Embedding(5, 3), nn.Linear(3, 5, bias=False))
    model[1].weight = model[0].weight
    c = roundtrip(capture(model))
    with torch.no_grad():
        model[0].weight.zero_()
    restore(model, c)
    assert model[1].weight is model[0].weight and model[0].weight.abs().sum() > 0


@pytest.mark.parametrize(
    "make_opt",
    [
        lambda ps: torch.optim.Adam(ps, lr=0.01),
        lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9),
        lambda ps: torch.optim.AdamW(ps, lr=0.01, foreach=True),
    ],
)
def test_optimizer_restored_and_keeps_the_model_parameters(make_opt):
    torch.manual_seed(0)
    model = nn.Linear(4, 4)
    opt = make_opt(model.parameters())
    train_step(model, opt)
    state = {"model": model, "opt": opt, "w": model.weight}
    c = roundtrip(capture(state))
    x = torch.randn(8, 4)
    reference = nn.Linear(4, 4)
    ref_opt = make_opt(reference.parameters())
    restore({"model": reference, "opt": ref_opt, "w": reference.weight}, c)
    for _ in range(2):
        train_step(model, opt)
    assert restore(state, c) is state and state["w"] is model.weight
    assert opt.param_groups[0]["params"][0] is model.weight
    for m, o in ((model, opt), (reference, ref_opt)):
        o.zero_grad()
        m(x).sum().backward()
        o.step()
    assert torch.equal(model.weight, reference.weight)


def test_schedulers_and_grad_scaler():
    model = nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    step = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0)
    lam = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 0.9**e)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    disabled = torch.amp.GradScaler("cpu", enabled=False)
    state = {"step": step, "plateau": plateau, "lam": lam, "scaler": scaler, "off": disabled, "opt": opt}
    opt.step()
    step.step()
    plateau.step(1.0)
    c = roundtrip(capture(state))
    expected = (
        step.state_dict(),
        plateau.state_dict()["num_bad_epochs"],
        lam.last_epoch,
        opt.param_groups[0]["lr"],
    )
    for _ in range(3):
        opt.step()
        step.step()
        plateau.step(2.0)
        lam.step()
    scaler.scale(torch.ones(()))
    scaler.update(1.0)
    restore(state, c)
    assert (step.state_dict(), plateau.state_dict()["num_bad_epochs"], lam.last_epoch) == expected[:3]
    assert opt.param_groups[0]["lr"] == expected[3] and scaler.get_scale() == 1024.0
    assert lam.lr_lambdas[0](2) == pytest.approx(0.81)


def test_generator_and_data_loader_generators():
    g = torch.Generator().manual_seed(3)
    ds = torch.utils.data.TensorDataset(torch.arange(20.0))
    loader = torch.utils.data.DataLoader(ds, batch_size=5, shuffle=True, generator=g)
    plain = torch.utils.data.DataLoader(ds, batch_size=5, shuffle=True)
    assert is_state(loader) and is_state(g)
    assert not is_state(plain) and not is_state(ds) and not is_state(iter(loader))
    c = roundtrip(capture({"loader": loader, "g": g}))
    first = [b[0].tolist() for b in loader]
    restore({"loader": loader, "g": g}, c)
    assert [b[0].tolist() for b in loader] == first
    built = materialize(roundtrip(capture(g)))
    restore(g, c_g := roundtrip(capture(g)))
    assert torch.equal(torch.rand(3, generator=built), torch.rand(3, generator=g))
    assert restore(g, c_g) is g


def test_dtype_and_device_attributes():
    class Config:
        pass

    cfg = Config()
    cfg.dtype, cfg.device, cfg.size = torch.float16, torch.device("cpu"), torch.Size([2, 3])
    c = roundtrip(capture(cfg))
    cfg.dtype, cfg.size = torch.float32, torch.Size([1])
    restore(cfg, c)
    assert cfg.dtype is torch.float16 and cfg.device == torch.device("cpu")
    assert cfg.size == torch.Size([2, 3]) and type(cfg.size) is torch.Size


def test_fingerprint_tensor_changes():
    t = torch.zeros(100)
    before = fingerprint(t)
    assert fingerprint(t) == before
    t.add_(1)
    assert fingerprint(t) != before
    p = nn.Parameter(torch.zeros(100))
    before = fingerprint(p)
    p.data.add_(1)  # bypasses the version counter
    assert fingerprint(p) != before
    before = fingerprint(p)
    p.grad = torch.ones(100)
    assert fingerprint(p) != before


def test_fingerprint_sees_optimizer_step_through_the_model():
    torch.manual_seed(0)
    model = Net()
    opt = torch.optim.Adam(model.parameters())
    sched = torch.optim.lr_scheduler.StepLR(opt, 1)
    train_step(model, opt)
    fps = [fingerprint(x) for x in (model, opt, sched)]
    assert [fingerprint(x) for x in (model, opt, sched)] == fps
    model.eval()
    with torch.no_grad():
        model.fc1(torch.randn(2, 4))
    assert fingerprint(model) != fps[0]  # training flags changed
    model.train()
    fps[0] = fingerprint(model)
    opt.zero_grad()
    model.fc2(torch.randn(2, 8)).sum().backward()
    opt.step()
    assert fingerprint(model) != fps[0] and fingerprint(opt) != fps[1] and fingerprint(sched) == fps[2]
    sched.step()
    assert fingerprint(sched) != fps[2]


def test_fingerprint_of_generators_and_loaders():
    g = torch.Generator().manual_seed(0)
    loader = torch.utils.data.DataLoader(list(range(10)), shuffle=True, generator=g)
    before = (fingerprint(g), fingerprint(loader))
    assert (fingerprint(g), fingerprint(loader)) == before
    list(loader)
    assert fingerprint(g) != before[0] and fingerprint(loader) != before[1]


def test_capture_rng_covers_torch():
    torch.manual_seed(1)
    c = roundtrip(capture_rng())
    first = torch.rand(4)
    restore_rng(c)
    assert torch.equal(torch.rand(4), first)


def test_torch_settings_round_trip():
    settings = capture_torch_settings()
    assert settings["num_threads"] == torch.get_num_threads()
    assert settings["default_dtype"] == "float32"
    original_threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        torch.set_default_dtype(torch.float64)
        torch.use_deterministic_algorithms(True, warn_only=True)
        apply_torch_settings(pickle.loads(pickle.dumps(settings)))
        assert torch.get_num_threads() == original_threads
        assert torch.get_default_dtype() == torch.float32
        assert not torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled() == settings["deterministic_warn_only"]
    finally:
        torch.set_num_threads(original_threads)
        torch.set_default_dtype(torch.float32)
        torch.use_deterministic_algorithms(False)
