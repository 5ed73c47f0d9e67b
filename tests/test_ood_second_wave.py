"""Second-wave OOD detectors: each against a closed form computed here, independently (numpy),
plus the golden values of references/ood_calibration_losses.md §1, and the any-model contract."""

import numpy as np
import pytest
import torch
from torch import nn
from zoo import TinyResNet

import workbench as wb
from workbench import ood as O
from workbench.data import Dataset

W = torch.tensor([[1.0, 0, 0.5], [0, 1, -0.5]], dtype=torch.float64)
B = torch.tensor([0.1, -0.2], dtype=torch.float64)
X = torch.tensor([[1, .2, .1], [.9, .1, .3], [.1, 1.1, 0], [.2, .8, .2], [1.2, 0, .1], [0, 1, .4]],
                 dtype=torch.float64)
XT = torch.tensor([[.5, .5, 1.0], [1.0, 0.1, 0.0], [0.2, 0.3, -0.4]], dtype=torch.float64)
HEAD = (W, B)

A = torch.tensor([[0, .1, .2, .3, .5, .8, 1, 1.5, 2, 3]], dtype=torch.float64)
W10 = torch.stack([torch.linspace(.1, 1, 10), torch.linspace(1, .1, 10)]).double()
HEAD10 = (W10, torch.zeros(2, dtype=torch.float64))


def lse(v):
    v = np.asarray(v, dtype=np.float64)
    m = v.max(-1, keepdims=True)
    return (m + np.log(np.exp(v - m).sum(-1, keepdims=True)))[..., 0]


def np_vim(x, dim):
    w, b, xt = W.numpy(), B.numpy(), x.numpy()
    u = -np.linalg.pinv(w) @ b
    c = X.numpy() - u
    ev, evec = np.linalg.eigh(c.T @ c / len(c))
    r_basis = evec[:, np.argsort(ev)[::-1][dim:]]
    r = lambda z: np.linalg.norm((z - u) @ r_basis, axis=1)  # noqa: E731
    alpha = (X.numpy() @ w.T + b).max(1).mean() / r(X.numpy()).mean()
    return alpha * r(xt) - lse(xt @ w.T + b), r(xt)


def test_vim_and_residual():
    vim = O.ViM(dim=2, head=HEAD).fit_features(X)
    res = O.Residual(dim=2, head=HEAD).fit_features(X)
    want_vim, want_res = np_vim(XT, 2)
    assert vim.predict_features(XT).double().numpy() == pytest.approx(want_vim, abs=1e-5)
    assert res.predict_features(XT).double().numpy() == pytest.approx(want_res, abs=1e-5)
    assert vim.predict_features(XT[:1]).item() == pytest.approx(4.546451, abs=1e-5)
    assert res.predict_features(XT[:1]).item() == pytest.approx(0.781676, abs=1e-5)
    assert vim.alpha_ == pytest.approx(7.531845, abs=1e-5)
    with pytest.raises(ValueError, match="smaller than the feature size"):
        O.ViM(dim=3, head=HEAD).fit_features(X)
    assert O.vim.default_vim_dim(512) == 256 and O.vim.default_vim_dim(2048) == 1000


def test_rmds():
    z = torch.tensor([[0, 0], [1, 0], [0, 1], [3, 3], [4, 3], [3, 4]], dtype=torch.float64)
    y = torch.tensor([0, 0, 0, 1, 1, 1])
    x = torch.tensor([[1.0, 2.0], [3.5, 3.2]], dtype=torch.float64)
    det = O.RMDS().fit_features(z, y)
    zn, xn = z.numpy(), x.numpy()
    mus = np.stack([zn[:3].mean(0), zn[3:].mean(0)])
    cen = zn - mus[y.numpy()]
    prec = np.linalg.inv(cen.T @ cen / 6)
    mu0 = zn.mean(0)
    prec0 = np.linalg.inv((zn - mu0).T @ (zn - mu0) / 6)
    md = np.stack([np.einsum("nd,de,ne->n", xn - m, prec, xn - m) for m in mus], 1)
    md0 = np.einsum("nd,de,ne->n", xn - mu0, prec0, xn - mu0)
    got = det.predict_features(x).double().numpy()
    assert got == pytest.approx(md.min(1) - md0, rel=1e-5)
    assert got[0] == pytest.approx(24.451807, abs=1e-4)


def test_gen():
    logits = torch.tensor([[2.0, 1.0, 0.1]])
    p = np.exp([2, 1, .1]) / np.exp([2, 1, .1]).sum()
    f = p ** .1 * (1 - p) ** .1
    assert O.GEN().fit_features(None).predict_features(logits).item() == pytest.approx(f.sum(), abs=1e-6)
    assert O.GEN().fit_features(None).predict_features(logits).item() == pytest.approx(2.490427, abs=1e-5)
    assert O.GEN(M=2).fit_features(None).predict_features(logits).item() == pytest.approx(1.705433, abs=1e-5)


def test_fdbd():
    det = O.FDBD(head=HEAD).fit_features(X)
    xn, w, b = XT.numpy(), W.numpy(), B.numpy()
    logit = xn @ w.T + b
    gap = np.abs(logit[:, 0] - logit[:, 1]) / np.linalg.norm(w[0] - w[1])
    want = -gap / np.linalg.norm(xn - X.numpy().mean(0), axis=1)
    assert det.predict_features(XT).double().numpy() == pytest.approx(want, abs=1e-5)
    assert det.predict_features(XT[:1]).item() == pytest.approx(-0.915243, abs=1e-5)
    by_norm = O.FDBD(normalizer="norm", head=HEAD).fit_features(X).predict_features(XT).double().numpy()
    assert by_norm == pytest.approx(-gap / np.linalg.norm(xn, axis=1), abs=1e-5)


def test_react():
    # the threshold is the 66.67th percentile of A's values = 1.0 (linear interpolation at index 6)
    det = O.ReAct(percentile=200 / 3, head=HEAD10).fit_features(A)
    assert det.threshold_ == pytest.approx(1.0)
    clipped = np.minimum(A.numpy(), 1.0)
    assert det.predict_features(A).item() == pytest.approx(-lse(clipped @ W10.numpy().T)[0], abs=1e-5)
    assert det.predict_features(A).item() == pytest.approx(-4.438117, abs=1e-5)
    rnd = torch.rand(50, 4, generator=torch.Generator().manual_seed(0)).double()
    d2 = O.ReAct(head=(torch.ones(3, 4).double(), None)).fit_features(rnd)
    assert d2.threshold_ == pytest.approx(np.percentile(rnd.numpy(), 90))


@pytest.mark.parametrize("variant,golden", [("p", -6.705783), ("b", -7.993547), ("s", -23.463379)])
def test_ash(variant, golden):
    a = A.numpy()[0]
    keep = np.argsort(a)[::-1][:4]                  # p = 60: k = 10 - round(6) = 4
    h = np.zeros(10)
    if variant == "p":
        h[keep] = a[keep]
    elif variant == "b":
        h[keep] = a.sum() / 4
    else:
        h[keep] = a[keep] * np.exp(a.sum() / a[keep].sum())
    det = O.ASH(variant=variant, percentile=60, head=HEAD10).fit_features(A)
    before = A.clone()
    assert det.predict_features(A).item() == pytest.approx(-lse(h @ W10.numpy().T), abs=1e-4)
    assert det.predict_features(A).item() == pytest.approx(golden, abs=1e-4)
    assert torch.equal(A, before)                   # not shaped in place


def test_scale():
    a = A.numpy()[0]
    h = a * np.exp(a.sum() / np.sort(a)[::-1][:4].sum())
    det = O.SCALE(percentile=60, head=HEAD10).fit_features(A)
    assert det.predict_features(A).item() == pytest.approx(-lse(h @ W10.numpy().T), abs=1e-4)
    assert det.predict_features(A).item() == pytest.approx(-26.720236, abs=1e-4)


def test_klm():
    temps = np.array([[.8, .1, .1], [.1, .8, .1], [.1, .1, .8]])
    det = O.KLMatching().fit_features(torch.tensor(np.log(temps)))
    assert det.templates_.numpy() == pytest.approx(temps)
    p = np.array([.5, .3, .2])
    kl = (p * np.log(p / temps)).sum(1)
    assert det.predict_features(torch.tensor(np.log(p))[None]).item() == pytest.approx(kl.min(), abs=1e-6)
    assert kl.min() == pytest.approx(0.233211, abs=1e-6)
    # a class never predicted has no template
    det = O.KLMatching().fit_features(torch.tensor(np.log(temps[:2])))
    assert det.classes_.tolist() == [0, 1]


def test_gradnorm_closed_form_and_autograd():
    det = O.GradNorm(head=HEAD).fit_features(X)
    assert det.predict_features(XT[:1]).item() == pytest.approx(-2.286680, abs=1e-5)
    assert O.GradNorm(targets="uniform", head=HEAD).fit_features(X).predict_features(XT[:1]).item() == \
        pytest.approx(-1.143340, abs=1e-5)
    lin = nn.Linear(3, 2).double()
    with torch.no_grad():
        lin.weight.copy_(W)
        lin.bias.copy_(B)
    for t in (1.0, 2.0):
        got = O.GradNorm(temperature=t, head=lin).fit_features(X).predict_features(XT).double()
        for i in range(len(XT)):                    # per-sample autograd, the official recipe
            lin.zero_grad()
            out = lin(XT[i : i + 1]) / t
            (-torch.log_softmax(out, 1).sum()).backward()
            assert got[i].item() == pytest.approx(-lin.weight.grad.abs().sum().item(), rel=1e-5)


class Linear2(nn.Module):
    """f(x) = W x with identity features, W rows (1, -1), (.5, .5), (-1, 1)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Identity()
        self.fc = nn.Linear(2, 3, bias=False)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[1.0, -1], [.5, .5], [-1, 1]]))

    def features(self, x):
        return self.body(x)

    def head(self, z):
        return self.fc(z)


def test_odin_golden_and_independent():
    net = Linear2().double()
    x = torch.tensor([[.4, .1], [-.3, .2]], dtype=torch.float64)
    det = O.ODIN().fit(net, Dataset(x))
    got = det.predict(net, Dataset(x)).double()
    wn = net.fc.weight.detach().numpy()
    for i, xi in enumerate(x.numpy()):
        logit = wn @ xi / 1000
        p = np.exp(logit - logit.max()) / np.exp(logit - logit.max()).sum()
        yhat = int(np.argmax(logit))
        grad = wn.T @ (p - np.eye(3)[yhat]) / 1000    # ∂CE(Wx/T, ŷ)/∂x
        xt = xi - 0.0014 * np.where(grad >= 0, 1.0, -1.0)
        lt = wn @ xt / 1000
        want = -(np.exp(lt - lt.max()) / np.exp(lt - lt.max()).sum()).max()
        assert got[i].item() == pytest.approx(want, abs=1e-6)
    assert got[0].item() == pytest.approx(-0.333406, abs=1e-6)
    assert net.fc.weight.grad is None
    with pytest.raises(ValueError, match="predict\\(model, data\\)"):
        det.predict_features(torch.randn(2, 3))
    flat = O.ODIN(epsilon=0.0).fit_features(None).predict_features(torch.tensor([[1.0, 2.0, 3.0]]))
    assert flat.item() == pytest.approx(-np.exp(3e-3) / np.exp([1e-3, 2e-3, 3e-3]).sum(), abs=1e-6)


class ResNetClassifier(nn.Module):
    """A user's ResNet (BatchNorm, residual blocks, 4-D maps) behind features()/head()."""

    def __init__(self):
        super().__init__()
        self.net = TinyResNet(in_channels=1, classes=3, width=4)

    def features(self, x):
        n = self.net
        h = n.layer2(n.layer1(n.relu(n.bn1(n.conv1(x)))))
        return torch.flatten(n.avgpool(h), 1)

    def head(self, z):
        return self.net.fc(z)


def _state(m):
    return {k: v.clone() for k, v in m.state_dict().items()}


@pytest.mark.parametrize("name", O.HEAD_DETECTORS + ("ODIN",))
def test_any_model_fit_equals_fit_features_and_model_untouched(name):
    torch.manual_seed(0)
    model = ResNetClassifier()
    model.train()
    model.net.layer1.eval()                         # a mixed mode that must survive
    x = torch.rand(40, 1, 8, 8)
    ds = Dataset(x, torch.arange(40) % 3)
    before = _state(model)
    kw = {"dim": 4} if name in ("ViM", "Residual") else {}
    det = O.create(name, **kw).fit(model, ds)
    s_model = det.predict(model, ds)
    bank = O.FeatureBank(model)
    if name == "ODIN":
        assert s_model.shape == (40,) and torch.isfinite(s_model).all()
    else:
        f = bank.features(ds)
        ref = O.create(name, head=model.net.fc, **kw).fit_features(f.backbone, f.y)
        assert torch.allclose(s_model, ref.predict_features(f.backbone), rtol=1e-5, atol=1e-5)
        assert torch.allclose(s_model, det.predict(bank, ds), rtol=1e-5, atol=1e-5)
    after = _state(model)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert model.training and not model.net.layer1.training and model.net.layer2.training
    assert all(p.grad is None for p in model.parameters())


def test_head_checks():
    with pytest.raises(ValueError, match="head=model.head"):
        O.ViM(dim=1).fit_features(X)
    mlp_head = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match="not affine"):
        O.FDBD(head=mlp_head).fit_features(X)
    with pytest.raises(ValueError, match="3-dimensional"):
        O.FDBD(head=(torch.ones(2, 5), None)).fit_features(X)
    # any affine callable is read by probing
    f = O.FDBD(head=lambda z: z @ W.T.float() + B.float()).fit_features(X.float())
    assert f.weight_.numpy() == pytest.approx(W.numpy(), abs=1e-6)
    with pytest.raises(ValueError, match="variant"):
        O.ASH(variant="q", head=HEAD).fit_features(X)


def test_compare_runs_both_waves():
    torch.manual_seed(0)
    ds = wb.data.load("gaussians8", n=400, seed=0)
    id_train, id_test, ood = wb.data.ood_split(ds, ood_classes=[6, 7], seed=0)
    model = wb.models.MLP(in_dim=2, hidden=(16,), out_dim=8)
    dets = [O.Energy(), O.ViM(dim=8), O.RMDS(), O.GEN(), O.FDBD(), O.ReAct(), O.ASH(), O.SCALE(),
            O.KLMatching(), O.GradNorm(), O.Residual(dim=8), O.ODIN(epsilon=0.0)]
    cmp = O.compare(dets, model, id_train, id_test, ood)
    assert len(cmp.detectors) == 12
    assert all(0 <= m.auroc <= 1 for m in cmp.metrics.values())
