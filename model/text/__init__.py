"""Words around the numbers, for lifters and therapists.

* :mod:`~model.text.verbal` — the verbal–numerical scale ("72 % — expected");
* :mod:`~model.text.report` — shareable links, phrases and the Markdown report;
* :mod:`~model.text.console` — a diagnosis as the command line prints it.
"""
