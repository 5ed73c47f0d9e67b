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
    kw.setdefault("batch_size", 64)
    hist = wb.fit(model, wb.methods.CrossEntropy(), data, seed=seed, progress=False, **kw)
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
        # optimizer: names list the valid ones; options are checked before anything changes
        (dict(optimizer="rmsprop"), ValueError, "unknown optimizer .rmsprop.; valid names: adam, adamw"),
        (dict(optimizer=3), TypeError, "optimizer must be a name"),
        (dict(optimizer="adam", momentum=0.9), ValueError, "does not take"),
        (dict(optimizer="sam", rho=-1.0), ValueError, "rho must be a positive number"),
        (dict(optimizer="sam", momentm=0.9), ValueError, "does not take .'momentm'.; valid options"),
        (dict(optimizer="adam", betas=(1.5, 0.9)), ValueError, "beta"),
        # length
        (dict(steps=0), ValueError, "steps must be a positive int, got 0"),
        (dict(steps=True), TypeError, "steps must be an int, got True"),
        (dict(steps=1e3), TypeError, "pass steps=1000"),
        (dict(steps=5, epochs=1), ValueError, "not both"),
        (dict(steps=None, epochs=True), TypeError, "epochs must be an int, got True"),
        (dict(steps=None, epochs=0), ValueError, "epochs must be a positive int"),
        (dict(steps=None, epochs=2.5), TypeError, "epochs must be an int"),
        # learning rate, batch size, schedule
        (dict(lr=-1.0), ValueError, "lr must be a finite number > 0"),
        (dict(lr=0), ValueError, "lr must be"),
        (dict(lr=float("nan")), ValueError, "lr must be"),
        (dict(lr=float("inf")), ValueError, "lr must be"),
        (dict(lr="1e-3"), TypeError, "lr must be a number > 0"),
        (dict(lr=True), TypeError, "lr must be a number"),
        (dict(batch_size=0), ValueError, "batch_size"),
        (dict(batch_size=32.0), TypeError, "pass batch_size=32"),
        (dict(batch_size=True), TypeError, "batch_size must be an int, got True"),
        (dict(schedule="step"), ValueError, "unknown schedule .step.; valid: None, 'constant', 'cosine'"),
        (dict(schedule=1), ValueError, "unknown schedule"),
        (dict(warmup=-1), ValueError, "warmup must be an int >= 0"),
        (dict(warmup=2.5), TypeError, "warmup must be an int, got 2.5"),
        (dict(steps=10, warmup=10), ValueError, "warmup .10 steps. must be shorter than the fit .10 steps."),
        (dict(weight_decay=-0.1), ValueError, "weight_decay must be a finite number >= 0"),
        (dict(weight_decay=float("nan")), ValueError, "weight_decay"),
        (dict(weight_decay="1e-4"), TypeError, "weight_decay must be a number >= 0.*or None"),
        (dict(grad_clip=0.0), ValueError, "grad_clip must be a finite number > 0"),
        (dict(grad_clip=-1), ValueError, "grad_clip"),
        (dict(grad_clip=float("inf")), ValueError, "grad_clip"),
        (dict(grad_clip="1"), TypeError, "grad_clip must be a number > 0.*or None"),
        # evaluation, seed, callbacks, progress, threads
        (dict(eval_every=5), ValueError, "val="),
        (dict(seed="0"), TypeError, "seed must be a non-negative int"),
        (dict(seed=1.0), TypeError, "seed must be a non-negative int, got 1.0"),
        (dict(seed=True), TypeError, "seed must be a non-negative int"),
        (dict(seed=-3), ValueError, "seed must be a non-negative int"),
        (dict(seed=2**64), ValueError, "seed must be below 2..64"),
        (dict(callbacks=StopAfter(3)), TypeError, r"pass callbacks=\[cb\]"),
        (dict(callbacks=[object()]), TypeError, "is not a callback"),
        (dict(callbacks="progress"), TypeError, "callbacks must be a list"),
        (dict(progress="yes"), TypeError, "progress must be True or False"),
        (dict(threads="many"), ValueError, "threads"),
        (dict(threads=0), ValueError, "threads must be an int >= 1"),
        (dict(threads=1.5), TypeError, "threads must be an int >= 1.*'auto'"),
        (dict(threads=True), TypeError, "threads must be an int >= 1"),
    ],
)
def test_fit_argument_errors(digits, kwargs, err, match):
    train, _ = digits
    model = wb.models.MLP(64, (8,), 10)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    kwargs.setdefault("progress", False)
    with pytest.raises(err, match=match):
        wb.fit(model, wb.methods.CrossEntropy(), train, **kwargs)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_eval_every_checked_with_val(digits):
    train, test = digits
    model = wb.models.MLP(64, (8,), 10)
    with pytest.raises(ValueError, match="eval_every must be a positive int, got 0"):
        wb.fit(model, "cross_entropy", train, val=test, eval_every=0, progress=False)
    with pytest.raises(TypeError, match="eval_every must be an int, got 2.5"):
        wb.fit(model, "cross_entropy", train, val=test, eval_every=2.5, progress=False)


def test_bad_options_raise_before_the_method_is_set_up(digits):
    train, _ = digits
    method = wb.methods.PALM(10, 3, top_k=2, dim=16)
    with pytest.raises(ValueError, match="does not take"):
        wb.fit(wb.models.MLP(64, (8,), 10), method, train, steps=2, progress=False, optimizer="sgd", betas=(0.9, 0.99))
    assert not list(method.parameters())  # its head is built by setup, which never ran


def test_valid_edge_values_are_accepted(digits):
    import numpy as np

    train, _ = digits
    _, hist = small_fit(train, steps=np.int64(5), batch_size=np.int64(32), lr=np.float32(1e-3), warmup=4,
                        weight_decay=0, seed=np.int64(3), callbacks=[StopAfter(4)])
    assert hist.status == "stopped" and hist.config["batch_size"] == 32 and hist.config["seed"] == 3


def test_fit_config_is_frozen():
    import dataclasses

    from workbench.training.checks import check_fit_args

    cfg, cbs = check_fit_args(
        n_train=100, has_val=True, steps=None, epochs=2, lr=1e-3, batch_size=32, optimizer="adam",
        weight_decay=None, schedule="cosine", warmup=1, grad_clip=None, eval_every=None, seed=0,
        callbacks=[], progress=False, threads="auto", optimizer_options={},
    )
    assert cfg.steps == 2 * (100 // 32) and cfg.eval_every == max(1, cfg.steps // 10) and cbs == ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 1.0


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
