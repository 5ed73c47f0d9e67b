"""Curvature of the loss: Hessian-vector products, top eigenvalues, trace, spectral density, sharpness.

The Hessian is that of the **sample mean** loss over the given data (sample blocks weighted by
their sizes), with respect to the model's parameters (all of them, or those chosen by
``params=``), at the model's weights, in eval mode on a copy of the model (the user's model is
only read, never changed). One algorithm a file, each readable against its paper:

================  ==========================================================================
``operator.py``   ``HessianOperator`` (what the Hessian is of; flat vectors) and ``hvp``
``engines.py``    the HVP engines — forward-over-reverse, cached double backward — and the
                  factory that picks the cheapest exact one (``hvp_mode="auto"``)
``chain_rop.py``  Pearlmutter's R-operator written out for chains of Linear layers and
                  element-wise activations, several directions per call
``lanczos.py``    Lanczos with full re-orthogonalisation, Ritz values, residuals, gaps
``eigs.py``       ``hessian_eigs``: top-k / bottom-k / largest-magnitude eigenvalues
``trace.py``      ``hessian_trace``: Hutchinson, Hutch++, exact
``density.py``    ``spectral_density``: stochastic Lanczos quadrature
``sharpness.py``  ``sharpness``: SAM's / ASAM's sharpness by projected gradient ascent
``per_class.py``  ``per_class=True``: the same quantity per class (Rangwani et al. 2022)
================  ==========================================================================

The chain description the R-operator reads is shared with the loss-landscape evaluator
(``analyses/_chain.py``); methods declare what their loss is (``Method.loss_form``) instead of
analyses testing their class.
"""

from .density import SpectralDensity, spectral_density
from .eigs import HessianEigs, hessian_eigs
from .engines import HVP_MODES
from .lanczos import WHICH
from .operator import HessianOperator, hvp
from .per_class import PerClass
from .sharpness import Sharpness, sharpness
from .trace import TRACE_ESTIMATORS, HessianTrace, hessian_trace

__all__ = [
    "hvp", "hessian_eigs", "hessian_trace", "spectral_density", "sharpness", "HessianOperator",
    "HessianEigs", "HessianTrace", "SpectralDensity", "Sharpness", "PerClass", "HVP_MODES",
    "WHICH", "TRACE_ESTIMATORS",
]
