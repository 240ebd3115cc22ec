"""Generic reasoning over a calibrated discrete Bayesian network.

>>> import model
>>> m = model.load_model()
>>> m.diagnose({"training_age": "first_sessions"}).causes  # doctest: +SKIP
"""

from model.evidence import EvidenceError
from model.inference.engine import ImpossibleEvidenceError
from model.network_model import Model, load_model
from model.results import (
    Contribution,
    Diagnosis,
    Fix,
    Interval,
    Question,
    SensitivityItem,
    Triage,
)

__all__ = [
    "Contribution",
    "Diagnosis",
    "EvidenceError",
    "Fix",
    "ImpossibleEvidenceError",
    "Interval",
    "Model",
    "Question",
    "SensitivityItem",
    "Triage",
    "load_model",
]
