"""Relaxation with a universal machine-learned potential (ASE optimiser + cell filter), one crystal or a batch.

Pure Python/ASE; torch and the potentials are imported only when a calculator is made, inside the worker that
uses it. The AiiDA side is :mod:`aiida_ccdcgan.calculations.relax` and :mod:`aiida_ccdcgan.workflows.relax`.
"""

from .engine import RelaxResult, relax_batch, relax_structure
from .settings import RelaxSettings, Status

__all__ = ["RelaxResult", "RelaxSettings", "Status", "relax_batch", "relax_structure"]
