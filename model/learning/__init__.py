"""Learning a calibration's numbers from recorded cases, and judging the result.

* :mod:`~model.learning.refit` — the estimators (scikit-learn conventions: settings in the
  constructor, ``fit`` returns the estimator, results in attributes ending in ``_``);
* :mod:`~model.learning.evaluate` — held-out metrics: log loss, Brier, calibration;
* :mod:`~model.learning.sampling` — synthetic cases from a known network (for tests and
  benchmarks only).
"""
