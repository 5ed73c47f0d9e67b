"""OOD detection on learned features: detectors, metrics with named conventions, a feature bank
and built-in benchmarks. Never imports plotly (figures are in ``wb.viz``, views in ``wb.widgets``).

Detectors follow scikit-learn's estimator contract with pytorch-ood's split::

    det = wb.ood.Energy().fit(model, id_train)           # or .fit_features(z, y)
    scores = det.predict(model, data)                     # (N,), larger = more OOD
    m = wb.ood.metrics(scores_id, scores_ood)             # m.auroc, m.fpr95 ("id-positive")

``FeatureBank(model, method=None)`` caches features per data set so that trying many detectors
costs one pass; every detector accepts a bank where it accepts a model. ``compare`` fits and
scores a list of detectors on ID and OOD sets and returns every score and metric, with a pandas
table. ``benchmark(name)`` builds ID/OOD splits from the built-in data. ``ood_map`` gathers a
2-D map, every detector's scores and the prototypes for the OOD lens (``wb.widgets.OODLens``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from .ash import ASH
from .bank import SPACES, FeatureBank, Features, MissingFeaturesError
from .base import Detector, NotFittedError
from .benchmarks import BENCHMARKS, Benchmark, benchmark, shuffle_pixels
from .fdbd import FDBD
from .gen import GEN
from .gradnorm import GradNorm
from .klm import KLMatching
from .knn import KNN
from .logits import MSP, Energy, MaxLogit
from .mahalanobis import Mahalanobis
from .map import OODMap, ood_map
from .metrics import (
    CONVENTIONS,
    OODMetrics,
    ROCCurve,
    metrics,
    rates_at,
    roc_curve,
    table,
    threshold_at,
)
from .neco import NECO
from .odin import ODIN
from .prototype import PrototypeScore
from .react import ReAct
from .residual import Residual
from .rmds import RMDS
from .scale import SCALE
from .ssd import SSD
from .vim import ViM
from .wdiscood import WDiscOOD

#: every detector class by name
DETECTORS: dict[str, type[Detector]] = {
    cls.__name__: cls
    for cls in (MSP, MaxLogit, Energy, Mahalanobis, SSD, KNN, NECO, WDiscOOD, PrototypeScore,
                # second wave: the strongest post-hoc scores of OpenOOD v1.5
                ViM, Residual, RMDS, GEN, FDBD, ReAct, ASH, SCALE, KLMatching, ODIN, GradNorm)
}

#: the detectors that score through the classifier's linear head (fit(model, ...) reads model.head;
#: fit_features needs head=)
HEAD_DETECTORS = ("ViM", "Residual", "FDBD", "ReAct", "ASH", "SCALE", "GradNorm")

__all__ = [
    "Detector", "NotFittedError", "DETECTORS", "available", "create",
    "MSP", "MaxLogit", "Energy", "Mahalanobis", "SSD", "KNN", "NECO", "WDiscOOD", "PrototypeScore",
    "ViM", "Residual", "RMDS", "GEN", "FDBD", "ReAct", "ASH", "SCALE", "KLMatching", "ODIN", "GradNorm",
    "HEAD_DETECTORS",
    "FeatureBank", "Features", "SPACES", "MissingFeaturesError",
    "metrics", "roc_curve", "rates_at", "threshold_at", "table", "OODMetrics", "ROCCurve", "CONVENTIONS",
    "compare", "Comparison", "default_detectors",
    "benchmark", "Benchmark", "BENCHMARKS", "shuffle_pixels",
    "ood_map", "OODMap",
]


def available() -> list[str]:
    """Names of the detectors."""
    return list(DETECTORS)


def create(name: str, **params) -> Detector:
    """A detector by (case-insensitive) class name, e.g. ``create("knn", k=10)``."""
    key = str(name).lower()
    for n, cls in DETECTORS.items():
        if n.lower() == key:
            return cls(**params)
    raise ValueError(f"unknown detector {name!r}; valid: {', '.join(DETECTORS)}")


def default_detectors(bank: FeatureBank, *, n_train: int | None = None) -> list[Detector]:
    """Every detector that can run on ``bank`` with sensible small-data defaults: the logit
    detectors when the bank has logits, the feature detectors always, PrototypeScore when the
    bank's method has prototypes. KNN's k is 50, or n_train // 20 when that is smaller."""
    out: list[Detector] = []
    if bank.with_logits:
        out += [MSP(), MaxLogit(), Energy()]
    k = 50 if n_train is None else max(1, min(50, n_train // 20))
    out += [Mahalanobis(), SSD(), KNN(k=k), NECO(), WDiscOOD()]
    if bank.method is not None and getattr(bank.method, "prototypes", None) is not None:
        out.append(PrototypeScore(bank.method))
    return out


@dataclass(frozen=True, eq=False)
class Comparison:
    """Scores and metrics of several detectors on one ID test set and named OOD sets.

    ``detectors``: name -> fitted detector; ``scores[name]``: {"ID": (N_id,), set: (N_set,)}
    CPU tensors (larger = more OOD); ``metrics[(name, set)]``: OODMetrics; ``convention`` of
    ``fpr95``. ``table()`` gives the pandas DataFrame, ``wide()`` one metric as detectors x sets.
    """

    detectors: dict[str, Detector]
    scores: dict[str, dict[str, torch.Tensor]]
    metrics: dict[tuple[str, str], OODMetrics]
    ood_sets: tuple[str, ...]
    convention: str = "id-positive"
    skipped: dict[str, str] = field(default_factory=dict)

    def table(self, convention: str | None = None):
        """Long table: one row per (detector, OOD set); AUROC, FPR@95 in both conventions
        (``convention`` first), AUPR-in/out. Fractions, not percentages."""
        return table(self.metrics, convention=convention or self.convention)

    def wide(self, metric: str = "auroc", convention: str | None = None):
        """One metric as a detectors x OOD sets DataFrame, plus the mean over sets. ``metric``:
        "auroc", "fpr95", "fpr95_id_positive", "fpr95_ood_positive", "aupr_in" or "aupr_out"."""
        from .._optional import require

        pd = require("pandas", "OOD result tables")
        valid = ("auroc", "fpr95", "fpr95_id_positive", "fpr95_ood_positive", "aupr_in", "aupr_out")
        if metric not in valid:
            raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(valid)}")
        conv = convention or self.convention
        attr = metric
        if metric == "fpr95":
            attr = "fpr95_id_positive" if conv == "id-positive" else "fpr95_ood_positive"
        data = {s: {d: getattr(self.metrics[(d, s)], attr) for d in self.detectors} for s in self.ood_sets}
        df = pd.DataFrame(data, index=pd.Index(list(self.detectors), name="detector"))
        df["mean"] = df.mean(axis=1)
        df.columns.name = attr if metric != "fpr95" else f"fpr95 ({conv})"
        return df

    def __repr__(self) -> str:
        lines = [f"Comparison({len(self.detectors)} detectors x {len(self.ood_sets)} OOD sets, "
                 f"FPR@95 {self.convention})"]
        for d in self.detectors:
            cells = ", ".join(
                f"{s}: AUROC {self.metrics[(d, s)].auroc:.3f} FPR {self.metrics[(d, s)].fpr95:.3f}"
                for s in self.ood_sets)
            lines.append(f"  {d}: {cells}")
        for d, why in self.skipped.items():
            lines.append(f"  {d}: skipped ({why})")
        return "\n".join(lines)


def _named(detectors, bank, n_train) -> dict[str, Detector]:
    if detectors is None or detectors == "all":
        detectors = default_detectors(bank, n_train=n_train)
    if isinstance(detectors, (Detector, str)):
        detectors = [detectors]
    if isinstance(detectors, Mapping):
        items = list(detectors.items())
    elif isinstance(detectors, Sequence):
        items = []
        for d in detectors:
            d = create(d) if isinstance(d, str) else d
            items.append((None, d))
    else:
        raise TypeError("detectors must be a list of detectors or names, a dict name -> detector, or 'all'")
    out: dict[str, Detector] = {}
    for name, det in items:
        if not isinstance(det, Detector):
            raise TypeError(f"expected a wb.ood detector, got {type(det).__name__}; valid names: {', '.join(DETECTORS)}")
        name = name or det.name
        base, i = name, 2
        while name in out:
            name, i = f"{base} #{i}", i + 1
        out[name] = det
    return out


def compare(detectors, source, id_train, id_test, ood, *, convention: str = "id-positive",
            tpr: float = 0.95, skip_unavailable: bool = False) -> Comparison:
    """Fit every detector on ``id_train``, score ``id_test`` and each OOD set, compute metrics.

    ``detectors``: a list of detectors or names, a dict name -> detector, or "all" / None for
    ``default_detectors``. ``source``: a model or a FeatureBank (a bank is built for a model,
    so each data set costs one pass whatever the number of detectors), or None when the sets
    are precomputed ``wb.data.Embeddings``. ``ood``: a Dataset or a
    dict name -> Dataset. ``skip_unavailable``: leave out detectors whose features the bank
    lacks (e.g. logit detectors on a PALM model) instead of raising; they are listed in
    ``skipped``.
    """
    from .metrics import _check_convention

    _check_convention(convention)
    if source is None:  # precomputed wb.data.Embeddings: a bank without a model
        bank = FeatureBank(None, logits=getattr(id_train, "logits", None) is not None)
    else:
        bank = source if isinstance(source, FeatureBank) else FeatureBank(source)
    if not isinstance(ood, Mapping):
        ood = {getattr(ood, "name", "ood"): ood}
    if not ood:
        raise ValueError("ood is empty; pass at least one OOD data set")
    dets = _named(detectors, bank, len(id_train) if hasattr(id_train, "__len__") else None)
    feats_train = bank.features(id_train)
    feats_test = bank.features(id_test)
    feats_ood = {k: bank.features(v) for k, v in ood.items()}
    fitted, scores, mets, skipped = {}, {}, {}, {}
    for name, det in dets.items():
        try:
            det.fit(bank, feats_train)
        except MissingFeaturesError as err:
            if skip_unavailable:
                skipped[name] = str(err).split(":")[0]
                continue
            raise
        s = {"ID": det.predict(bank, feats_test)}
        for k, f in feats_ood.items():
            s[k] = det.predict(bank, f)
            mets[(name, k)] = metrics(s["ID"], s[k], convention=convention, tpr=tpr)
        fitted[name], scores[name] = det, s
    return Comparison(fitted, scores, mets, tuple(ood), convention, skipped)
