import pytest
import torch

import workbench as wb


def test_round_trip(tmp_path):
    model = wb.models.ConvNet((1, 8, 8), 10, width=4, feature_dim=8, seed=0)
    method = wb.methods.CrossEntropy(label_smoothing=0.1)
    path = wb.save_checkpoint(tmp_path / "ck.safetensors", model, method, extra={"note": "x"})
    m2, me2 = wb.load_checkpoint(path)
    assert type(m2) is type(model) and m2.config["width"] == 4
    assert me2.label_smoothing == 0.1
    for (k, a), (k2, b) in zip(model.state_dict().items(), m2.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    x = torch.rand(2, 1, 8, 8)
    assert torch.equal(model(x), m2(x))


def test_missing_damaged_and_foreign_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        wb.load_checkpoint(tmp_path / "nope.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ValueError, match="damaged"):
        wb.load_checkpoint(bad)
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(ValueError, match="not a workbench checkpoint"):
        wb.load_checkpoint(tmp_path / "foreign.safetensors")


def test_checkpoint_needs_a_rebuildable_model(tmp_path):
    with pytest.raises(TypeError, match="config"):
        wb.save_checkpoint(tmp_path / "x.safetensors", torch.nn.Linear(2, 2))


def test_no_pickle_in_checkpoints(tmp_path):
    path = wb.save_checkpoint(tmp_path / "ck.safetensors", wb.models.MLP(4, (4,), 2))
    data = path.read_bytes()
    assert b"\x80\x04" not in data[:64] and b"torch._utils" not in data
