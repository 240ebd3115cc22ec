"""What the model says about one set of answers, each analysis on a
:class:`~model.analysis.network.CalibratedNetwork`:

* :mod:`~model.analysis.triage` — the fixed red-flag rules, before anything else;
* :mod:`~model.analysis.explain` — why: each finding's push on each cause, and the MPE;
* :mod:`~model.analysis.decide` — what to ask next and which fix helps most;
* :mod:`~model.analysis.twin` — the next-session network behind the fixes;
* :mod:`~model.analysis.uncertainty` — intervals and sensitivity from the numbers' confidence;
* :mod:`~model.analysis.checks` — the behaviour checks every calibration must pass.
"""
