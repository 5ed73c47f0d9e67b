"""What a fit leaves behind: per-step records, evaluation records, how it ended."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

STATUSES = ("running", "completed", "stopped", "interrupted", "diverged")


@dataclass
class History:
    """Per-step loss and logs, evaluation metrics, and how the fit ended.

    ``status``: ``"completed"``, ``"stopped"`` (a callback asked, e.g. a stop button),
    ``"interrupted"`` (KeyboardInterrupt / the notebook's stop button) or ``"diverged"``
    (a non-finite loss; the model was restored to its last good state). ``message`` says why.
    ``config`` holds fit's arguments and ``config["threads"]`` the torch thread count the fit
    ran with; ``threads_note`` says how that count was chosen, e.g.
    ``"auto: 1 thread (small model: 39.7 MFLOP/step < 200 MFLOP)"``.
    """

    steps: list[int] = field(default_factory=list)
    records: list[dict[str, float]] = field(default_factory=list)
    evals: list[dict[str, float]] = field(default_factory=list)
    status: str = "running"
    message: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    elapsed: float = 0.0
    snapshots: Any = None
    threads_note: str = ""

    # ------------------------------------------------------------------ recording
    def log_step(self, step: int, record: dict[str, float]) -> None:
        self.steps.append(int(step))
        self.records.append(record)

    def log_eval(self, step: int, metrics: dict[str, float]) -> None:
        self.evals.append({"step": int(step), **metrics})

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        return len(self.steps)

    @property
    def last_step(self) -> int:
        return self.steps[-1] if self.steps else 0

    def series(self, key: str = "loss") -> np.ndarray:
        """One logged quantity per step as a numpy array (NaN where a step did not log it)."""
        if not any(key in r for r in self.records):
            known = sorted({k for r in self.records for k in r})
            raise KeyError(f"no step logged {key!r}; logged keys: {known}")
        return np.array([r.get(key, np.nan) for r in self.records], dtype=float)

    @property
    def loss(self) -> np.ndarray:
        return self.series("loss")

    def eval_series(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) of one evaluation metric."""
        pts = [(e["step"], e[key]) for e in self.evals if key in e]
        if not pts:
            known = sorted({k for e in self.evals for k in e if k != "step"})
            raise KeyError(f"no evaluation recorded {key!r}; recorded: {known}")
        s, v = zip(*pts)
        return np.asarray(s), np.asarray(v, dtype=float)

    def final(self, key: str = "acc", *, split: str = "val") -> float:
        """The last recorded value of ``key`` (``split="val"`` for evaluations, ``"train"`` for steps)."""
        if split == "val":
            return float(self.eval_series(key)[1][-1])
        if split == "train":
            return float(self.series(key)[-1])
        raise ValueError(f"split must be 'val' or 'train', got {split!r}")

    def to_frame(self):
        """A pandas DataFrame indexed by step: training columns, and ``val_*`` columns at
        the steps where an evaluation ran (NaN elsewhere)."""
        import pandas as pd

        df = pd.DataFrame.from_records(self.records, index=pd.Index(self.steps, name="step"))
        if self.evals:
            ev = pd.DataFrame.from_records(self.evals).set_index("step").add_prefix("val_")
            df = df.join(ev, how="outer")
        return df

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe content (snapshots excluded)."""
        return {
            "steps": list(self.steps),
            "records": [dict(r) for r in self.records],
            "evals": [dict(e) for e in self.evals],
            "status": self.status,
            "message": self.message,
            "config": dict(self.config),
            "elapsed": self.elapsed,
            "threads_note": self.threads_note,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        return cls(
            steps=list(d["steps"]), records=list(d["records"]), evals=list(d["evals"]),
            status=d["status"], message=d.get("message", ""), config=dict(d.get("config", {})),
            elapsed=float(d.get("elapsed", 0.0)), threads_note=str(d.get("threads_note", "")),
        )

    def __repr__(self) -> str:
        parts = [f"steps={len(self.steps)}", f"status={self.status!r}"]
        if self.records:
            parts.append(f"final loss={self.records[-1].get('loss', float('nan')):.4g}")
        if self.evals:
            last = {k: v for k, v in self.evals[-1].items() if k != "step"}
            parts.append("val " + ", ".join(f"{k}={v:.4g}" for k, v in last.items()))
        if self.elapsed:
            parts.append(f"{self.elapsed:.1f}s")
        n = self.config.get("threads")
        if isinstance(n, int):
            parts.append(f"{n} thread" + ("s" if n != 1 else ""))
        if self.message and self.status != "completed":
            parts.append(f"message={self.message!r}")
        return "History(" + ", ".join(parts) + ")"
