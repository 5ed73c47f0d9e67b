import pytest
import torch

import workbench as wb
from workbench.methods import Method
from workbench.training import Callback, Snapshots, StopAfter


@pytest.fixture(scope="module")
def digits():
    return wb.data.load("digits").split(0.8, seed=0)


def small_fit(data, seed=0, **kw):
    model = wb.models.MLP(64, (32,), 10, seed=0)
    kw.setdefault("steps", 30)
    hist = wb.fit(model, wb.methods.CrossEntropy(), data, batch_size=64, seed=seed, progress=False, **kw)
    return model, hist


def test_same_seed_same_history_and_weights(digits):
    train, _ = digits
    m1, h1 = small_fit(train, seed=5)
    m2, h2 = small_fit(train, seed=5)
    assert h1.records == h2.records
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    m3, h3 = small_fit(train, seed=6)
    assert h3.records != h1.records


def test_fit_restores_caller_rng_threads_and_mode(digits):
    train, _ = digits
    model = wb.models.MLP(64, (32,), 10, seed=0).eval()
    state = torch.random.get_rng_state()
    threads = torch.get_num_threads()
    wb.fit(model, wb.methods.CrossEntropy(), train, steps=3, progress=False)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.get_num_threads() == threads
    assert model.training is False


def test_mlp_on_digits_reaches_95_percent(digits):
    train, test = digits
    model = wb.models.MLP(64, (128, 128), 10, seed=0)
    hist = wb.fit(model, wb.methods.CrossEntropy(), train, steps=1000, lr=1e-3, val=test, progress=False)
    assert hist.status == "completed"
    assert hist.final("acc") >= 0.95
    assert wb.analyses.predict(model, test).accuracy == pytest.approx(hist.final("acc"))


def test_epochs_eval_and_frame(digits):
    train, test = digits
    _, hist = small_fit(train, steps=None, epochs=2, val=test, eval_every=5)
    per_epoch = len(train) // 64
    assert len(hist) == 2 * per_epoch
    assert [e["step"] for e in hist.evals][:2] == [5, 10] and hist.evals[-1]["step"] == len(hist)
    df = hist.to_frame()
    assert {"loss", "acc", "lr", "val_loss", "val_acc"} <= set(df.columns)
    assert "History(" in repr(hist)


def test_schedule_and_warmup(digits):
    train, _ = digits
    _, hist = small_fit(train, steps=20, schedule="cosine", warmup=5, lr=0.1, optimizer="sgd")
    lr = hist.series("lr")
    assert lr[0] == pytest.approx(0.04) and max(lr) == pytest.approx(0.1) and lr[-1] == pytest.approx(0.0, abs=1e-12)


class NaNAt(Method):
    """Cross-entropy that returns NaN from step ``k`` on (counts calls in training mode)."""

    def __init__(self, k: int):
        super().__init__()
        self.k, self.calls = k, 0

    def loss(self, model, batch):
        x, y = batch
        self.calls += 1
        loss = torch.nn.functional.cross_entropy(model(x), y)
        return (loss * float("nan") if self.calls >= self.k else loss), {}


def test_nan_loss_stops_and_restores_last_good_state(digits):
    train, _ = digits
    # reference: the weights after 4 clean steps
    ref = wb.models.MLP(64, (32,), 10, seed=0)
    wb.fit(ref, wb.methods.CrossEntropy(), train, steps=4, batch_size=64, progress=False)
    model = wb.models.MLP(64, (32,), 10, seed=0)
    with pytest.warns(RuntimeWarning, match="step 6"):
        hist = wb.fit(model, NaNAt(6), train, steps=50, batch_size=64, progress=False)
    assert hist.status == "diverged" and "step 6" in hist.message
    assert len(hist) == 5  # steps 1..5 recorded
    # the last finite loss was at step 5, computed on the weights after 4 updates
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), ref.state_dict().values()))
    assert all(torch.isfinite(p).all() for p in model.parameters())


class InterruptAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, state):
        if state.step == self.step:
            raise KeyboardInterrupt


def test_keyboard_interrupt_ends_cleanly(digits):
    train, _ = digits
    model = wb.models.MLP(64, (32,), 10, seed=0)
    hist = wb.fit(model, wb.methods.CrossEntropy(), train, steps=100, batch_size=64,
                  callbacks=[InterruptAt(7)], progress=False)
    assert hist.status == "interrupted" and len(hist) == 7
    ref = wb.models.MLP(64, (32,), 10, seed=0)
    wb.fit(ref, wb.methods.CrossEntropy(), train, steps=7, batch_size=64, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), ref.state_dict().values()))


def test_interrupt_in_the_middle_of_an_update_restores_weights(digits):
    train, _ = digits

    class Flaky(torch.optim.SGD):
        calls = 0

        def step(self, closure=None):
            Flaky.calls += 1
            if Flaky.calls == 3:
                with torch.no_grad():
                    for g in self.param_groups:
                        g["params"][0].add_(100.0)  # half-applied update
                raise KeyboardInterrupt
            return super().step(closure)

    model = wb.models.MLP(64, (32,), 10, seed=0)
    hist = wb.fit(model, wb.methods.CrossEntropy(), train, steps=10, batch_size=64, progress=False,
                  optimizer=lambda params, lr, weight_decay=0.0: Flaky(params, lr=lr))
    assert hist.status == "interrupted" and len(hist) == 2
    ref = wb.models.MLP(64, (32,), 10, seed=0)
    wb.fit(ref, wb.methods.CrossEntropy(), train, steps=2, batch_size=64, progress=False, optimizer="sgd",
           momentum=0.0)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), ref.state_dict().values()))


def test_callback_stop_and_snapshots(digits):
    train, test = digits
    snaps = Snapshots(every=5, embed=test)
    _, hist = small_fit(train, steps=50, callbacks=[StopAfter(12), snaps])
    assert hist.status == "stopped" and len(hist) == 12
    s = hist.snapshots
    assert s.steps == (0, 5, 10, 12)
    assert len(s.params) == 4 and s.embeddings[0].shape == (len(test), 32)
    assert not torch.equal(s.params[0]["fc.weight"], s.params[-1]["fc.weight"])


def test_progress_bar_default_runs(digits, capsys):
    train, _ = digits
    model = wb.models.MLP(64, (8,), 10, seed=0)
    hist = wb.fit(model, "cross_entropy", train, steps=3)
    assert hist.status == "completed"


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        (dict(optimizer="rmsprop"), ValueError, "unknown optimizer .rmsprop.; valid names: adam, adamw"),
        (dict(optimizer="adam", momentum=0.9), ValueError, "does not take"),
        (dict(lr=-1.0), ValueError, "lr must be"),
        (dict(steps=0), ValueError, "steps must be"),
        (dict(steps=5, epochs=1), ValueError, "not both"),
        (dict(batch_size=0), ValueError, "batch_size"),
        (dict(schedule="step"), ValueError, "schedule"),
        (dict(eval_every=5), ValueError, "val="),
        (dict(threads="many"), ValueError, "threads"),
    ],
)
def test_fit_argument_errors(digits, kwargs, err, match):
    train, _ = digits
    model = wb.models.MLP(64, (8,), 10)
    with pytest.raises(err, match=match):
        wb.fit(model, wb.methods.CrossEntropy(), train, progress=False, **kwargs)


def test_fit_input_errors(digits):
    train, _ = digits
    model = wb.models.MLP(64, (8,), 10)
    with pytest.raises(ValueError, match="valid names: .*CrossEntropy"):
        wb.fit(model, "nonsense", train, steps=1, progress=False)
    with pytest.raises(TypeError, match="wb.methods.CrossEntropy"):
        wb.fit(model, torch.nn.CrossEntropyLoss(), train, steps=1, progress=False)
    with pytest.raises(TypeError, match="Dataset.from_arrays"):
        wb.fit(model, "cross_entropy", (train.x, train.y), steps=1, progress=False)
    unlabelled = wb.data.Dataset(train.x)
    with pytest.raises(ValueError, match="needs labels"):
        wb.fit(model, "cross_entropy", unlabelled, steps=1, progress=False)
    # model and data on different devices ("meta" stands in for an accelerator here)
    with pytest.raises(ValueError, match="is on meta"):
        wb.fit(model, "cross_entropy", train.to("meta"), steps=1, progress=False)
    bad = wb.data.Dataset(torch.full((4, 64), float("nan")), torch.zeros(4, dtype=torch.int64))
    with pytest.raises(ValueError, match="NaN"):
        wb.fit(model, "cross_entropy", bad, steps=1, progress=False)
    wrong_shape = wb.data.load("moons", n=64)
    with pytest.raises(ValueError, match="in_dim=2"):
        wb.fit(model, "cross_entropy", wrong_shape, steps=1, progress=False)
    ood = wb.data.Dataset(train.x[:8], torch.full((8,), -1))
    with pytest.raises(ValueError, match="-1"):
        wb.fit(model, "cross_entropy", ood, steps=1, progress=False)
    with pytest.raises(ValueError, match="out_dim=11"):
        wb.fit(wb.models.MLP(64, (8,), 10), "cross_entropy",
               wb.data.Dataset(train.x[:8], torch.full((8,), 10)), steps=1, progress=False)


@pytest.mark.gpu
def test_fit_on_gpu_moves_cpu_data_and_method():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    train, test = wb.data.load("digits").split(0.8, seed=0)
    model = wb.models.MLP(64, (32,), 10, seed=0).to("cuda")
    method = wb.methods.CrossEntropy()
    hist = wb.fit(model, method, train, steps=20, val=test, progress=False)
    assert hist.status == "completed" and next(model.parameters()).is_cuda
    assert wb.analyses.predict(model, test).logits.device.type == "cpu"
