"""Exact inference over any discrete Bayesian network.

* :mod:`model.inference.network` — the public entry: :func:`load_network` / :class:`Network`
  (BIF or XMLBIF files, or a pgmpy model), marginals, MPE and DataFrame batches;
* :mod:`model.inference.engine` — the compiled junction-tree engine underneath;
* :mod:`model.inference.formats` — the BIF / XMLBIF reader (no pgmpy needed);
* :mod:`model.inference.frames` — scoring a DataFrame by integer codes, in blocks;
* :mod:`model.inference.dask` — the same over a Dask DataFrame's partitions (``[dask]`` extra);
* :mod:`model.inference.backends` — the seam between the engine and pgmpy's reference;
* :mod:`model.inference.evidence` — checking evidence and turning it into likelihoods;
* :mod:`model.inference.batching` — stacking many evidence rows, entropy and logit;
* :mod:`model.inference.pgmpy_adapter` — every pgmpy import (pinned ``pgmpy==1.1.2``).

Nothing here knows the knowpain vocabulary.
"""

from model.errors import ImpossibleEvidenceError
from model.inference.engine import BatchResult, CompiledNetwork
from model.inference.network import Network, NetworkEvidenceError, load_network

__all__ = [
    "BatchResult",
    "CompiledNetwork",
    "ImpossibleEvidenceError",
    "Network",
    "NetworkEvidenceError",
    "load_network",
]
