"""Shared set-up for the curvature and landscape benchmarks (run as scripts from benchmarks/)."""

import workbench as wb


def train_model():
    """The reference notes' model: 64-128-128-10 MLP, 8 epochs SGD (lr 0.05, momentum 0.9,
    batch 64, seed 0) on all 1797 digits (flattened); returned in eval mode with its data."""
    ds = wb.data.load("digits")
    data = wb.data.Dataset.from_arrays(ds.flat, ds.y)
    model = wb.models.MLP(64, (128, 128), 10, seed=0)
    wb.fit(model, wb.methods.CrossEntropy(), data, epochs=8, lr=0.05, batch_size=64, optimizer="sgd",
           seed=0, progress=False)
    model.eval()
    return model, data
