"""``wrap``: any ``nn.Module`` classifier (or encoder) as a workbench model.

    net = wb.models.wrap(my_resnet)                             # features = the input of `fc`
    net = wb.models.wrap(my_resnet, features="layer4", head="fc", pool="avg")
    net = wb.models.wrap(vit)                                   # vit.forward_features + vit.head
    net = wb.models.wrap(hf_model, head="classifier", output="logits", input="pixel_values")

The workbench's analyses and methods talk to a model through ``features(x) -> (N, d)``,
``head(z) -> logits`` and ``forward(x) -> logits``. ``wrap`` gives a user's network those three
without copying or changing it:

* ``forward(x)`` is the network's own forward (``output=`` picks the logits out of a dict or an
  object such as Hugging Face's ``.logits``; ``input=`` passes ``x`` by keyword);
* ``features``: a submodule name (dotted, ``"layer4"`` or ``"blocks.3"``: its output, taken by a
  forward hook that stops the forward there), a method name (``"forward_features"``), or a
  function ``fn(module, x)``. Default: the network's ``forward_features`` when it has one, else
  what the head receives (a pre-hook on the head), else the network's output (an encoder);
* ``head``: a submodule name, or a function ``fn(module, z)`` (or an ``nn.Module`` of your own,
  e.g. a new linear probe: it becomes part of the wrapper, trained and saved with it). Default:
  the first of ``fc``, ``head``, ``classifier`` that exists; ``head=False``: an encoder, no head.
  With a head of your own (a function or module outside the network), ``forward(x)`` is
  ``head(features(x))``: the network's own output is then not the classifier's;
* ``pool``: how feature maps become vectors: ``"avg"`` (default: the mean over the spatial axes
  of channels-first maps, (N, C, H, W) -> (N, C)), ``"max"``, ``"flatten"``, ``"cls"`` (token 0
  of an (N, T, D) sequence), ``"tokens"`` (the mean over the tokens of (N, T, D)), ``None``
  (refuse anything but (N, d)), or a function. (N, d) features are never pooled. Three-axis
  features are ambiguous ((N, C, L) signal maps or (N, T, D) token sequences, as timm's
  ``forward_features`` returns for a ViT), so ``"avg"`` and ``"max"`` refuse them: say
  ``"cls"``, ``"tokens"`` or pass a function.

**Never copied, never changed.** The wrapper holds the network as its submodule ``module``
(parameter names gain the ``module.`` prefix, as in ``DataParallel``); hooks live only for the
duration of one ``features`` call, and no attribute is ever set on the network. Modes are the
network's own (the wrapper starts in the network's mode; analyses switch and restore every
submodule through ``workbench._modes``).

``wrap`` of a module that already has ``features()`` and ``head()`` (a workbench model, or a
wrapper) with no options is that module itself. ``check(x)`` runs the pieces once and says
whether ``head(features(x))`` reproduces ``forward(x)``; ``wrap(..., example=x)`` does it at once.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

__all__ = ["wrap", "Wrapped", "WrappedClassifier", "POOLS", "HEAD_NAMES"]

POOLS = ("avg", "max", "flatten", "cls", "tokens", None)
HEAD_NAMES = ("fc", "head", "classifier")


class _Stop(Exception):
    """Raised by a feature hook to end the forward once the features are taken."""


def _qualname(obj) -> str:
    t = obj if isinstance(obj, type) else type(obj)
    return f"{t.__module__}.{t.__qualname__}"


def _fn_name(fn) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"


def _near(name: str, module: nn.Module) -> str:
    names = [n for n, _ in module.named_modules() if n]
    close = difflib.get_close_matches(name, names, n=4, cutoff=0.5)
    top = [n for n, _ in module.named_children()]
    hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    return f"{hint}{type(module).__name__}'s submodules: {', '.join(top)}"


class _Part:
    """One of features / head: a submodule path, a method name, or a function. Resolved against
    the wrapper's ``module`` at each call (so a deep copy of the wrapper uses its own copy)."""

    def __init__(self, kind: str, spec):
        self.kind, self.spec = kind, spec  # kind: "module", "method", "function", "input_of", "output"

    def describe(self) -> Any:
        if self.kind in ("module", "method"):
            return self.spec
        if self.kind == "input_of":
            return {"input_of": self.spec}
        if self.kind == "output":
            return None
        return {"__callable__": _fn_name(self.spec)}


def _resolve(module: nn.Module, name: str, what: str) -> _Part:
    if not isinstance(name, str) or not name:
        raise TypeError(f"{what} must be a submodule name, a method name or a function, got {name!r}")
    try:
        module.get_submodule(name)
        return _Part("module", name)
    except AttributeError:
        pass
    parent, _, attr = name.rpartition(".")
    try:
        owner = module.get_submodule(parent) if parent else module
    except AttributeError:
        owner = None
    if owner is not None and callable(getattr(owner, attr, None)) and not isinstance(getattr(owner, attr), nn.Module):
        return _Part("method", name)
    raise ValueError(f"{type(module).__name__} has no submodule or method {name!r} for {what}; {_near(name, module)}")


def _pool(h, pool, where: str) -> torch.Tensor:
    if isinstance(h, (tuple, list)):
        raise ValueError(
            f"{where} returns a {type(h).__name__} of {len(h)} items, not a tensor; pass "
            "features=fn(module, x) returning the (N, d) features"
        )
    if not isinstance(h, torch.Tensor):
        raise TypeError(f"{where} returns a {type(h).__name__}, not a tensor; pass features=fn(module, x)")
    if h.ndim == 2:
        return h
    if h.ndim < 2:
        raise ValueError(f"{where} returns shape {tuple(h.shape)}; features need a batch axis (N, d)")
    if callable(pool):
        out = pool(h)
    elif pool in ("avg", "max") and h.ndim == 3:
        raise ValueError(
            f"{where} returns 3-axis features {tuple(h.shape)}: (N, C, L) maps or (N, T, D) tokens? Pass "
            "pool='cls' (token 0), pool='tokens' (mean over tokens) or a function, e.g. "
            "pool=lambda h: h.mean(2) for (N, C, L) maps"
        )
    elif pool == "avg":
        out = h.mean(dim=tuple(range(2, h.ndim)))
    elif pool == "max":
        out = h.amax(dim=tuple(range(2, h.ndim)))
    elif pool == "flatten":
        out = h.flatten(1)
    elif pool == "cls":
        if h.ndim != 3:
            raise ValueError(f"pool='cls' takes token 0 of (N, T, D) sequences, but {where} returns {tuple(h.shape)}")
        out = h[:, 0]
    elif pool == "tokens":
        if h.ndim != 3:
            raise ValueError(f"pool='tokens' averages the tokens of (N, T, D) sequences, but {where} returns {tuple(h.shape)}")
        out = h.mean(1)
    else:  # None
        raise ValueError(
            f"{where} returns feature maps of shape {tuple(h.shape)}; pass pool='avg' (mean over the "
            "spatial axes), 'max', 'flatten', 'cls' (token 0), 'tokens' or a function to make (N, d) vectors"
        )
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        raise ValueError(f"pooling {where}'s output {tuple(h.shape)} gave {getattr(out, 'shape', type(out))}; it must give (N, d)")
    return out


def _pick_output(out, output):
    if output is None:
        if isinstance(out, torch.Tensor):
            return out
        if isinstance(out, Mapping) and "logits" in out:
            return out["logits"]
        if not isinstance(out, (tuple, list, Mapping)) and isinstance(getattr(out, "logits", None), torch.Tensor):
            return out.logits
        keys = list(out) if isinstance(out, Mapping) else (
            f"{len(out)} items" if isinstance(out, (tuple, list)) else
            [k for k in vars(out) if not k.startswith("_")] if hasattr(out, "__dict__") else type(out).__name__)
        raise ValueError(
            f"the model returns a {type(out).__name__} ({keys}), not a tensor of logits; pass output='key' "
            "(a dict key or attribute), output=0 (a tuple position) or output=fn(out)"
        )
    if callable(output):
        return output(out)
    if isinstance(output, int):
        return out[output]
    if isinstance(out, Mapping):
        if output not in out:
            raise ValueError(f"the model's output has no key {output!r}; its keys: {list(out)}")
        return out[output]
    if not hasattr(out, output):
        raise ValueError(f"the model's output ({type(out).__name__}) has no attribute {output!r}")
    return getattr(out, output)


class Wrapped(nn.Module):
    """A user's network seen as a workbench model (an encoder: ``features`` and ``forward``).
    Built by ``wb.models.wrap``; see the module docstring."""

    def __init__(self, module: nn.Module, features: _Part, pool, output, input_name, feature_dim):
        super().__init__()
        self.module = module
        self.training = module.training  # the wrapper starts in the network's own mode
        self._features = features
        self._pool = pool
        self._output = output
        self._input = input_name
        self._feature_dim = feature_dim
        self.extra = None  # a head module of the user's own (WrappedClassifier)

    # ------------------------------------------------------------------ the three calls
    def _run(self, x):
        return self.module(**{self._input: x}) if self._input else self.module(x)

    def forward(self, x):
        return _pick_output(self._run(x), self._output)

    def features(self, x) -> torch.Tensor:
        """(N, d) features of a batch (see the module docstring for where they are taken)."""
        part = self._features
        if part.kind == "function":
            h, where = part.spec(self.module, x), f"features function {_fn_name(part.spec)}"
        elif part.kind == "method":
            parent, _, attr = part.spec.rpartition(".")
            owner = self.module.get_submodule(parent) if parent else self.module
            h, where = getattr(owner, attr)(x), f"{part.spec}()"
        elif part.kind == "output":
            h, where = self.forward(x), "the model's output"
        else:
            h, where = self._hooked(x, part), f"submodule {part.spec!r}"
        z = _pool(h, self._pool, where)
        if self._feature_dim is None:
            self._feature_dim = int(z.shape[1])
        return z

    def _hooked(self, x, part: _Part):
        sub = self.module.get_submodule(part.spec)
        got = []
        if part.kind == "input_of":
            def take(mod, args):
                got.append(args[0] if args else None)
                raise _Stop
            handle = sub.register_forward_pre_hook(take)
        else:
            def take(mod, args, out):
                got.append(out)
                raise _Stop
            handle = sub.register_forward_hook(take)
        try:
            self._run(x)
        except _Stop:
            pass
        finally:
            handle.remove()
        if not got:
            raise ValueError(
                f"the forward of {type(self.module).__name__} never called submodule {part.spec!r} "
                f"({type(sub).__name__}), so its {'input' if part.kind == 'input_of' else 'output'} cannot "
                "be the features; pick a submodule the forward runs, or pass features=fn(module, x)"
            )
        if got[0] is None:
            raise ValueError(f"submodule {part.spec!r} was called without positional inputs; pass features=fn(module, x)")
        return got[0]

    # ------------------------------------------------------------------ facts
    @property
    def feature_dim(self) -> int | None:
        """Size of the features: given, or read off the head's ``in_features`` when the features
        are what the head receives, or known after the first ``features`` call; else None."""
        if self._feature_dim is not None:
            return self._feature_dim
        if self._features.kind == "input_of":
            lin = self.module.get_submodule(self._features.spec)
            if isinstance(lin, nn.Linear):
                return lin.in_features
        return None

    @property
    def wrap_config(self) -> dict[str, Any]:
        """How the wrapper was configured, as JSON (functions by their qualified name)."""
        pool = self._pool if not callable(self._pool) else {"__callable__": _fn_name(self._pool)}
        out = self._output if not callable(self._output) else {"__callable__": _fn_name(self._output)}
        return {"features": self._features.describe(), "head": self._head_config(), "pool": pool,
                "output": out, "input": self._input, "feature_dim": self.feature_dim}

    def _head_config(self):
        return False

    @property
    def module_class(self) -> str:
        return _qualname(self.module)

    def check(self, x) -> dict[str, Any]:
        """Run features (and head) once on ``x`` in eval mode (modes restored, no gradients):
        shapes, and whether ``head(features(x))`` equals ``forward(x)``."""
        from .._modes import eval_mode

        with torch.no_grad(), eval_mode(self):
            z = self.features(x)
            out = self.forward(x)
            report: dict[str, Any] = {"features": tuple(z.shape), "output": tuple(out.shape)}
            if isinstance(self, WrappedClassifier):
                logits = self.head(z)
                report["logits"] = tuple(logits.shape)
                same = logits.shape == out.shape
                diff = float((logits - out).abs().max()) if same else float("inf")
                report["max_abs_diff"] = diff
                report["consistent"] = bool(same and diff <= 1e-4 * (1 + float(out.abs().max())))
        return report

    def extra_repr(self) -> str:
        cfg = self.wrap_config
        parts = [f"features={_short(cfg['features'])}"]
        if cfg["head"] is not False:
            parts.append(f"head={_short(cfg['head'])}")
        parts.append(f"pool={_short(cfg['pool'])}")
        for k in ("output", "input"):
            if cfg[k] is not None:
                parts.append(f"{k}={_short(cfg[k])}")
        return ", ".join(parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.module).__name__}, {self.extra_repr()})"


def _short(v) -> str:
    if isinstance(v, dict) and "__callable__" in v:
        return v["__callable__"].rsplit(".", 1)[-1] + "()"
    if isinstance(v, dict) and "input_of" in v:
        return f"input of {v['input_of']!r}"
    return repr(v)


class WrappedClassifier(Wrapped):
    """A wrapped classifier: ``features``, ``head`` and ``forward``."""

    def __init__(self, module, features, head: _Part, pool, output, input_name, feature_dim):
        super().__init__(module, features, pool, output, input_name, feature_dim)
        self._head = head
        if head.kind == "function" and isinstance(head.spec, nn.Module):
            self.extra = head.spec  # registered: trained and saved with the wrapper

    def forward(self, x):
        if self._head.kind == "function":  # a head of the user's own: logits = head(features)
            return self.head(self.features(x))
        return super().forward(x)

    def head(self, z) -> torch.Tensor:
        """Logits of (N, d) features."""
        part = self._head
        if part.kind == "function":
            fn = self.extra if self.extra is not None else part.spec
            return fn(z) if isinstance(fn, nn.Module) else fn(self.module, z)
        sub = self.module.get_submodule(part.spec)
        if isinstance(sub, nn.Linear) and z.ndim == 2 and z.shape[1] != sub.in_features:
            raise ValueError(
                f"the features have {z.shape[1]} values per sample but the head {part.spec!r} (Linear) "
                f"expects {sub.in_features}; choose features the head reads (the default: the input of "
                f"{part.spec!r}), a pool= that gives {sub.in_features} values, or another head="
            )
        try:
            return sub(z)
        except RuntimeError as err:
            if "shape" in str(err) or "size" in str(err):
                raise ValueError(
                    f"the head {part.spec!r} ({type(sub).__name__}) cannot take features of shape "
                    f"{tuple(z.shape)}: {err}"
                ) from None
            raise

    @property
    def n_classes(self) -> int | None:
        if self._head.kind == "module":
            sub = self.module.get_submodule(self._head.spec)
            if isinstance(sub, nn.Linear):
                return sub.out_features
        if isinstance(self.extra, nn.Linear):
            return self.extra.out_features
        return None

    def _head_config(self):
        if self._head.kind == "function" and isinstance(self._head.spec, nn.Module):
            return {"module": _qualname(self._head.spec)}
        return self._head.describe()


# ----------------------------------------------------------------------------- wrap
def wrap(module: nn.Module, features=None, head=None, *, pool="avg", output=None, input: str | None = None,
         feature_dim: int | None = None, example=None) -> nn.Module:
    """A workbench model (``features``, ``head``, ``forward``) around ``module``, which is never
    copied or changed. See the module docstring for every option. ``example``: a batch of
    inputs to check the configuration on at once (errors raised, a mismatch between
    ``head(features(x))`` and ``forward(x)`` warned about)."""
    if not isinstance(module, nn.Module):
        raise TypeError(f"wrap takes a torch.nn.Module, got {type(module).__name__}")
    defaults = features is None and head is None and pool == "avg" and output is None and input is None
    if defaults and callable(getattr(module, "features", None)) and callable(getattr(module, "head", None)):
        if example is not None and isinstance(module, Wrapped):
            module.check(example)
        return module
    if pool not in POOLS and not callable(pool):
        raise ValueError(f"unknown pool {pool!r}; valid: 'avg', 'max', 'flatten', 'cls', 'tokens', None or a function")
    if output is not None and not (isinstance(output, (str, int)) or callable(output)) or isinstance(output, bool):
        raise TypeError(f"output must be a key/attribute name, a tuple position or a function, got {output!r}")
    if input is not None and not isinstance(input, str):
        raise TypeError(f"input must be the keyword name of the model's input (e.g. 'pixel_values'), got {input!r}")
    if feature_dim is not None and (isinstance(feature_dim, bool) or not isinstance(feature_dim, int) or feature_dim < 1):
        raise ValueError(f"feature_dim must be a positive int or None, got {feature_dim!r}")
    head_part = _head_part(module, head)
    feat_part = _features_part(module, features, head_part)
    cls_args = (feat_part, pool, output, input, feature_dim)
    net = WrappedClassifier(module, feat_part, head_part, *cls_args[1:]) if head_part is not None \
        else Wrapped(module, *cls_args)
    if example is not None:
        report = net.check(example)
        if report.get("consistent") is False:
            warnings.warn(
                f"head(features(x)) differs from the model's forward(x) (max |diff| {report['max_abs_diff']:.3g}): "
                "analyses that use features+head (OOD logits, prototypes) and those that use forward "
                "(landscapes, predictions) will see different models; check features= and head=",
                UserWarning, stacklevel=2,
            )
    return net


def _head_part(module: nn.Module, head) -> _Part | None:
    if head is False:
        return None
    if head is None:
        for name in HEAD_NAMES:
            sub = getattr(module, name, None)
            if isinstance(sub, nn.Module):
                return _Part("module", name)
        return None
    if isinstance(head, str):
        part = _resolve(module, head, "head")
        if part.kind != "module":
            raise ValueError(f"head={head!r} is a method; pass head=lambda module, z: module.{head}(z)")
        return part
    if callable(head):
        if isinstance(head, nn.Module) and any(head is m for m in module.modules()):
            name = next(n for n, m in module.named_modules() if m is head)
            return _Part("module", name)
        return _Part("function", head)
    raise TypeError(f"head must be a submodule name, a function, an nn.Module, None (auto) or False, got {head!r}")


def _features_part(module: nn.Module, features, head_part: _Part | None) -> _Part:
    if features is None:
        if callable(getattr(module, "forward_features", None)):
            return _Part("method", "forward_features")
        if head_part is not None and head_part.kind == "module":
            return _Part("input_of", head_part.spec)
        return _Part("output", None)
    if isinstance(features, str):
        return _resolve(module, features, "features")
    if isinstance(features, nn.Module):
        name = next((n for n, m in module.named_modules() if m is features and n), None)
        if name is None:
            raise ValueError("features= is an nn.Module that is not part of the model; pass its name or a function")
        return _Part("module", name)
    if callable(features):
        return _Part("function", features)
    raise TypeError(f"features must be a submodule name, a method name or a function fn(module, x), got {features!r}")
