"""The estimator contract every learner follows, after scikit-learn's conventions.

* settings go to the constructor and are stored unchanged, one attribute per parameter;
* :meth:`~Estimator.get_params` / :meth:`~Estimator.set_params` read and change them;
* ``fit(cases)`` learns and returns the estimator itself; what it learned lives in
  attributes whose names end in ``_`` (absent before ``fit``);
* :func:`clone` gives a fresh, unfitted estimator with the same settings.
"""

from __future__ import annotations

import inspect
from typing import Any, Self

from model.errors import UsageError

__all__ = ["Estimator", "clone", "is_fitted"]


class Estimator:
    """Base class: parameters are the constructor's arguments (no ``*args``/``**kwargs``)."""

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [name for name, p in signature.parameters.items()
                if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def get_params(self) -> dict[str, Any]:
        """The constructor settings: ``type(est)(**est.get_params())`` is an unfitted copy."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Self:
        """Change settings (unknown names are refused, naming the valid ones)."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise UsageError(f"{type(self).__name__} has no parameter {name!r}; valid "
                                 f"parameters are: {', '.join(valid)}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r:.40}" for k, v in self.get_params().items()
                          if k != "base")
        return f"{type(self).__name__}({shown})"


def clone(estimator: Estimator) -> Estimator:
    """A new, unfitted estimator with the same settings."""
    return type(estimator)(**estimator.get_params())


def is_fitted(estimator: Estimator) -> bool:
    """True once ``fit`` has set the learned attributes (names ending in ``_``)."""
    return any(k.endswith("_") and not k.startswith("_") for k in vars(estimator))
