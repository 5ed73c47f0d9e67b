"""Data the workbench did not make: ``wb.data.from_files`` (every format, round trips, bad files)
and ``wb.data.from_torch`` (datasets, loaders, dicts)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import workbench as wb

RNG = np.random.default_rng(0)
X = RNG.standard_normal((30, 5)).astype(np.float32)
Y = np.arange(30) % 3


def _check(ds, x=X, y=Y):
    assert isinstance(ds, wb.data.Dataset)
    np.testing.assert_array_equal(ds.x.numpy(), x)
    if y is None:
        assert ds.y is None
    else:
        np.testing.assert_array_equal(ds.y.numpy(), y)


# ----------------------------------------------------------------------------- round trips
def test_npy_is_memory_mapped_and_round_trips(tmp_path):
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", Y)
    ds = wb.data.from_files(tmp_path / "x.npy", labels=str(tmp_path / "y.npy"))
    _check(ds)
    assert ds.meta["memory_mapped"]  # (that no copy is made is measured in test_embeddings)
    assert ds.name == "x" and ds.meta["source"].endswith("x.npy")
    ds.x[0, 0] = 123.0  # copy-on-write: the file is never written
    assert np.load(tmp_path / "x.npy")[0, 0] == X[0, 0]
    _check(wb.data.from_files(str(tmp_path / "x.npy"), labels=Y, mmap=False))
    _check(wb.data.from_files(tmp_path / "x.npy"), y=None)


def test_npz_pt_csv_parquet_round_trip(tmp_path):
    np.savez(tmp_path / "d.npz", features=X, labels=Y)
    _check(wb.data.from_files(tmp_path / "d.npz"))
    np.savez(tmp_path / "named.npz", a=X, b=Y)
    _check(wb.data.from_files(tmp_path / "named.npz", features="a", labels="b"))

    torch.save({"x": torch.from_numpy(X), "y": torch.from_numpy(Y)}, tmp_path / "d.pt")
    _check(wb.data.from_files(tmp_path / "d.pt"))
    torch.save((torch.from_numpy(X), torch.from_numpy(Y)), tmp_path / "pair.pth")
    _check(wb.data.from_files(tmp_path / "pair.pth"))
    torch.save(torch.from_numpy(X), tmp_path / "x.pt")
    _check(wb.data.from_files(tmp_path / "x.pt", mmap=False), y=None)

    import pandas as pd

    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(5)])
    df.insert(0, "id", np.arange(30))
    df["species"] = np.array(["setosa", "versicolor", "virginica"])[Y]
    df.to_csv(tmp_path / "t.csv", index=False)
    ds = wb.data.from_files(tmp_path / "t.csv", labels="species")
    np.testing.assert_allclose(ds.x.numpy(), X, rtol=1e-6)
    assert ds.classes == ("setosa", "versicolor", "virginica") and torch.equal(ds.y, torch.from_numpy(Y))
    assert ds.meta["columns"] == [f"f{i}" for i in range(5)]  # the id column is not a feature
    df.to_parquet(tmp_path / "t.parquet")
    pq = wb.data.from_files(tmp_path / "t.parquet", labels="species", features=["f0", "f1"])
    np.testing.assert_array_equal(pq.x.numpy(), X[:, :2])
    assert pq.classes == ds.classes


def test_string_labels_get_a_stable_class_list(tmp_path):
    names = np.array(["dog", "cat", "bird", "cat", "dog", "bird"] * 5)
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "names.npy", names)
    a = wb.data.from_files(tmp_path / "x.npy", labels=tmp_path / "names.npy")
    rev = wb.data.from_files(tmp_path / "x.npy", labels=names[::-1].copy())
    assert a.classes == rev.classes == ("bird", "cat", "dog")
    assert [a.classes[i] for i in a.y[:3]] == ["dog", "cat", "bird"]
    (tmp_path / "labels.txt").write_text("\n".join(names) + "\n")
    assert torch.equal(wb.data.from_files(tmp_path / "x.npy", labels=tmp_path / "labels.txt").y, a.y)


def test_image_folder_of_any_size_and_channels(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(1)
    root = tmp_path / "imgs"
    arrays = {}
    for cls in ["circle", "square"]:
        (root / cls).mkdir(parents=True)
        for i in range(3):
            a = rng.integers(0, 256, (6, 5), dtype=np.uint8)
            Image.fromarray(a, "L").save(root / cls / f"{i}.png")
            arrays[(cls, i)] = a
    ds = wb.data.from_files(root)
    assert ds.kind == "image" and ds.x.shape == (6, 1, 6, 5) and ds.classes == ("circle", "square")
    assert ds.y.tolist() == [0, 0, 0, 1, 1, 1]
    np.testing.assert_allclose(ds.x[4, 0].numpy(), arrays[("square", 1)] / 255.0, rtol=1e-6)
    assert ds.meta["files"][4] == "square/1.png"
    rgb = wb.data.from_files(root, channels=3, size=(4, 4))
    assert rgb.x.shape == (6, 3, 4, 4) and float(rgb.x.max()) <= 1.0
    Image.fromarray(rng.integers(0, 256, (9, 9, 4), dtype=np.uint8), "RGBA").save(root / "square" / "big.png")
    with pytest.raises(ValueError, match=r"2 different sizes.*size=\(H, W\)"):
        wb.data.from_files(root)
    mixed = wb.data.from_files(root, size=8)
    assert mixed.x.shape == (7, 3, 8, 8)  # one colour image: every image as RGB
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.fromarray(arrays[("circle", 0)], "L").save(flat / "a.png")
    assert wb.data.from_files(flat).y is None


def test_pillow_missing_names_the_pip_install(tmp_path, monkeypatch):
    import sys

    (tmp_path / "c").mkdir()
    monkeypatch.setitem(sys.modules, "PIL", None)  # import PIL now raises ImportError
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    with pytest.raises(ImportError, match="pip install Pillow"):
        wb.data.from_files(tmp_path)


# ----------------------------------------------------------------------------- bad files
class Evil:
    """Any object that needs pickle (a .pt file holding it must not be read)."""


def test_bad_files_give_clear_errors(tmp_path):
    (tmp_path / "x.xyz").write_text("?")
    with pytest.raises(ValueError, match=r"unknown file type '.xyz'.*\.npy, \.npz, \.pt"):
        wb.data.from_files(tmp_path / "x.xyz")
    with pytest.raises(FileNotFoundError, match="no file or folder"):
        wb.data.from_files(tmp_path / "missing.npy")
    np.save(tmp_path / "flat.npy", np.arange(5.0))
    with pytest.raises(ValueError, match=r"shape \(5,\); expected \(N, features...\)"):
        wb.data.from_files(tmp_path / "flat.npy")
    np.save(tmp_path / "x.npy", X)
    with pytest.raises(ValueError, match="30 samples but 29 labels"):
        wb.data.from_files(tmp_path / "x.npy", labels=Y[:29])
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}] * 3, dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="Python objects.*pickle"):
        wb.data.from_files(tmp_path / "obj.npy")

    torch.save({"x": torch.zeros(3, 2), "obj": Evil()}, tmp_path / "pickled.pt")
    with pytest.raises(ValueError, match=r"holds Python objects besides tensors.*weights_only=True"):
        wb.data.from_files(tmp_path / "pickled.pt")

    import pandas as pd

    pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(ValueError, match=r"no column 'label' for the labels; its columns: \['a', 'b'\]"):
        wb.data.from_files(tmp_path / "t.csv", labels="label")
    pd.DataFrame({"a": [1.0, 2.0], "txt": ["u", "v"]}).to_csv(tmp_path / "s.csv", index=False)
    with pytest.raises(ValueError, match=r"columns \['txt'\] are not numeric"):
        wb.data.from_files(tmp_path / "s.csv")
    np.savez(tmp_path / "two.npz", p=X, q=X)
    with pytest.raises(ValueError, match=r"holds arrays \['p', 'q'\]; say which are the inputs with features="):
        wb.data.from_files(tmp_path / "two.npz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images in"):
        wb.data.from_files(tmp_path / "empty")


def test_files_work_where_a_builtin_dataset_does(tmp_path):
    digits = wb.data.load("digits")
    np.save(tmp_path / "x.npy", digits.x.numpy())
    np.save(tmp_path / "y.npy", digits.y.numpy())
    ds = wb.data.from_files(tmp_path / "x.npy", labels=tmp_path / "y.npy")
    assert ds.kind == "image" and ds.shape == (1, 8, 8)
    train, test = ds.split(0.8, seed=0)
    model = wb.models.MLP(64, (16,), 10, seed=0)
    wb.fit(model, wb.methods.CrossEntropy(), train, steps=3, progress=False)
    assert wb.analyses.predict(model, test).logits.shape == (len(test), 10)
    assert len(wb.data.ood_split(ds, [9])[2]) == int((digits.y == 9).sum())


# ----------------------------------------------------------------------------- from_torch
class Pairs(torch.utils.data.Dataset):
    def __init__(self, n=20, dicts=False, names=False):
        self.n, self.dicts, self.names = n, dicts, names
        self.classes = ["zero", "one", "two"]

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        x = torch.full((1, 2, 2), float(i))
        y = ["b", "a"][i % 2] if self.names else i % 3
        return {"pixel_values": x, "label": y, "idx": i} if self.dicts else (x, y)


def test_from_torch_dataset_loader_and_dicts():
    ds = wb.data.from_torch(Pairs())
    assert ds.x.shape == (20, 1, 2, 2) and ds.y.tolist() == [i % 3 for i in range(20)]
    assert ds.classes == ("zero", "one", "two") and ds.meta["keys"] == {"x": 0, "y": 1}
    sub = wb.data.from_torch(Pairs(), n=5, seed=3)
    again = wb.data.from_torch(Pairs(), n=5, seed=3)
    assert torch.equal(sub.x, again.x) and len(sub) == 5
    assert sub.x[:, 0, 0, 0].tolist() == sorted(sub.x[:, 0, 0, 0].tolist())
    d = wb.data.from_torch(Pairs(dicts=True, names=True))
    assert d.meta["keys"] == {"x": "pixel_values", "y": "label"} and d.classes == ("a", "b")
    assert d.y.tolist()[:2] == [1, 0]
    loader = torch.utils.data.DataLoader(Pairs(), batch_size=6, shuffle=False)
    dl = wb.data.from_torch(loader, n=14)
    assert len(dl) == 14 and torch.equal(dl.x, ds.x[:14]) and torch.equal(dl.y, ds.y[:14])
    named = wb.data.from_torch(Pairs(dicts=True), x="pixel_values", y="idx")
    assert named.y.tolist() == list(range(20))
    with pytest.raises(KeyError, match=r"keys \['pixel_values', 'label', 'idx'\]; there is no label key 'lbl'"):
        wb.data.from_torch(Pairs(dicts=True), y="lbl")
    with pytest.raises(TypeError, match="Dataset.from_arrays"):
        wb.data.from_torch(np.zeros((3, 2)))


def test_from_torch_pil_and_uint8_images(tmp_path):
    from PIL import Image

    class Imgs(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return Image.fromarray(np.full((3, 5, 3), 51 * i, dtype=np.uint8), "RGB"), i % 2

    ds = wb.data.from_torch(Imgs())
    assert ds.x.shape == (4, 3, 3, 5) and ds.kind == "image"
    np.testing.assert_allclose(ds.x[2].numpy(), 102 / 255, rtol=1e-6)
    u8 = torch.utils.data.TensorDataset(torch.full((4, 1, 2, 2), 255, dtype=torch.uint8), torch.arange(4))
    ds8 = wb.data.from_torch(u8, out=tmp_path / "x.npy")
    assert float(ds8.x.max()) == 1.0 and ds8.meta["scaled"] == 1 / 255
    assert np.load(tmp_path / "x.npy").shape == (4, 1, 2, 2)
