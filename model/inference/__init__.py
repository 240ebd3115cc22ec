"""Exact inference: the compiled junction-tree engine and what feeds it.

The public entry for any discrete network is :func:`load_network` / :class:`Network`
(see :mod:`model.inference.network`); :class:`CompiledNetwork` is the engine underneath.
"""

from model.inference.engine import BatchResult, CompiledNetwork, ImpossibleEvidenceError
from model.inference.network import Network, NetworkEvidenceError, load_network

__all__ = [
    "BatchResult",
    "CompiledNetwork",
    "ImpossibleEvidenceError",
    "Network",
    "NetworkEvidenceError",
    "load_network",
]
