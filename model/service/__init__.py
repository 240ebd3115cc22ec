"""The service layer: the one policy behind every door that changes the clinic's store.

The app's pages and the command line both call it, and nothing else writes to the store:

* :mod:`model.service.settings` — where the store is and which passcode is configured;
* :mod:`model.service.access` — the passcode check;
* :mod:`model.service.policy` — what may be saved (:func:`~model.service.policy.review`);
* :mod:`model.service.clinic` — :class:`~model.service.clinic.Clinic`: save, activate, roll
  back, import and delete cases, and which calibration lifters see;
* :mod:`model.service.refit` — which refit method, and what a refit would change;
* :mod:`model.service.views` — read-only comparisons and previews for therapists.

Submodules are imported where they are used, so that ``knowpain diagnose`` stays light.
"""
