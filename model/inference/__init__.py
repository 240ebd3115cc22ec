"""Exact inference over any discrete Bayesian network.

* :mod:`model.inference.engine` — the compiled junction-tree engine (batched einsum);
* :mod:`model.inference.backends` — the seam between the engine and pgmpy's reference;
* :mod:`model.inference.evidence` — checking evidence and turning it into likelihoods;
* :mod:`model.inference.batching` — stacking many evidence rows, entropy and logit;
* :mod:`model.inference.pgmpy_adapter` — every pgmpy import (pinned ``pgmpy==1.1.2``).

Nothing here knows the knowpain vocabulary.
"""
