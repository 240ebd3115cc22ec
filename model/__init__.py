"""knowpain's reasoning over a calibrated discrete Bayesian network.

>>> import model
>>> m = model.load_model()
>>> m.diagnose({"training_age": "first_sessions"}).causes  # doctest: +SKIP

The names below are loaded on first use, so that ``import model.errors`` (which the
calibration package needs) stays light and free of import cycles.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from model.errors import (
        EvidenceError,
        ImpossibleEvidenceError,
        KnowpainError,
    )
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

_WHERE = {
    "Model": "model.network_model",
    "load_model": "model.network_model",
    "EvidenceError": "model.errors",
    "ImpossibleEvidenceError": "model.errors",
    "KnowpainError": "model.errors",
    "Contribution": "model.results",
    "Diagnosis": "model.results",
    "Fix": "model.results",
    "Interval": "model.results",
    "Question": "model.results",
    "SensitivityItem": "model.results",
    "Triage": "model.results",
}

__all__ = [
    "Contribution",
    "Diagnosis",
    "EvidenceError",
    "Fix",
    "ImpossibleEvidenceError",
    "Interval",
    "KnowpainError",
    "Model",
    "Question",
    "SensitivityItem",
    "Triage",
    "load_model",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'model' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
