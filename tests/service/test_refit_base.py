"""A refit always starts from the expert base calibration and every case so far — so no case
counts twice, whichever version is active — and a saved version never changes: its
companions (fixes, red flags, checks) are inline and its text reads back byte for byte."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from calibration.loader import DATA_DIR, load_calibration, parse_calibration
from calibration.store import NewCase, Store
from calibration.writer import to_toml
from model.errors import NotFoundError
from model.learning.sampling import sample_cases
from model.service.clinic import Clinic, RefitBase, unlock
from model.service.policy import self_contained
from model.service.settings import Settings

PASS = "pass"


@pytest.fixture
def conf(tmp_path: Path) -> Settings:
    return Settings(store_path=tmp_path / "store.sqlite", passcode=PASS)


def record(clinic: Clinic, n: int, seed: int) -> list[int]:
    cal = clinic.calibration()
    truth = cal.with_table("training_age", [0.6, 0.3, 0.1])
    frame = sample_cases(truth, n, seed=seed)
    observable = [m for m, node in cal.nodes.items() if node.observable]
    return clinic.record_cases([NewCase({k: r[k] for k in observable},
                                        {c: r[c] for c in cal.causes})
                                for r in frame.to_dict("records")], "Dr A")


def test_refits_start_from_the_expert_base_with_every_case(conf: Settings) -> None:
    with Clinic.open(conf, unlock(conf, PASS)) as clinic:
        record(clinic, 300, seed=1)
        base = clinic.refit_base()
        assert base.version.id == 1 and "the active version 1 (an expert calibration)" \
            in base.why
        first = clinic.refit(folds=0)
        assert first.n_cases == 300 and first.base_version == 1
        assert first.cases_label.startswith("all 300 stored case(s)")
        v2 = clinic.save_refit(first, "Dr A", activate=True)
        assert (v2.kind, v2.fitted_from, v2.parent_id) == ("refit", 1, 1)
        detail = json.loads(v2.fit_detail)
        assert detail["cases"] == 300 and detail["method"] == first.method
        # the refit is active now; the next refit still starts from version 1 ...
        again = clinic.refit_base()
        assert again.version.id == 1
        assert "version 1, the expert calibration that the active version 2 was refitted " \
            "from" in again.why
        # ... so refitting the same cases again gives the same numbers (nothing doubled)
        second = clinic.refit(folds=0)
        for n in first.calibration.nodes:
            np.testing.assert_allclose(second.calibration.cpt(n), first.calibration.cpt(n),
                                       atol=1e-9)
        # a refit of a refit would have moved further: the cases would count twice
        doubled = clinic.refit(folds=0, base=RefitBase(clinic.calibration(2),
                                                       clinic.version(2), "v2 itself"))
        gap_once = abs(first.calibration.cpt("training_age")[0] - 0.6)
        gap_twice = abs(doubled.calibration.cpt("training_age")[0] - 0.6)
        assert gap_twice < gap_once  # pulled further towards the cases: counted twice
        # new cases: the next refit uses all of them, still from the expert base
        record(clinic, 100, seed=2)
        third = clinic.refit(folds=0)
        assert third.n_cases == 400 and third.base_version == 1


def test_the_refit_base_of_an_old_refit_walks_up_to_an_expert(conf: Settings) -> None:
    with Clinic.open(conf, unlock(conf, PASS)) as clinic:
        expert_text = self_contained(clinic.calibration())
        v2 = clinic._store.add_version(expert_text.replace('"knowpain-lowback"',
                                                           '"edited"', 1), author="Dr A")
        # an old refit, migrated: a refit whose expert base is unknown
        v3 = clinic._store.add_version(expert_text, author="Dr A", parent_id=v2.id,
                                       kind="refit", activate=True)
        assert clinic.expert_of(v3).id == v2.id
        assert clinic.refit_base().version.id == v2.id
        assert clinic.refit_base("v3").version.id == v2.id
        with pytest.raises(NotFoundError, match="no calibration version 9"):
            clinic.refit_base(9)


def test_a_saved_refit_carries_its_confidences(conf: Settings) -> None:
    with Clinic.open(conf, unlock(conf, PASS)) as clinic:
        record(clinic, 200, seed=3)
        result = clinic.refit(folds=0)
        version = clinic.save_refit(result, "Dr A")
        stored = parse_calibration(version.toml_text)
        expert = clinic.calibration(1)
        node = stored.nodes["training_age"]
        assert node.column_confidence[""] == expert.nodes["training_age"].confidence + 200
        assert stored.nodes["stabilizer_overload"].cpt == "noisy_or"
        leak = stored.nodes["stabilizer_overload"].column_confidence["leak"]
        assert leak == pytest.approx(expert.nodes["stabilizer_overload"].confidence + 200)
        # saving the refit's file through `calibration save` also records a refit
        again = clinic.save(to_toml(stored), "Dr A", "by hand")
        assert again.kind == "refit"


def test_a_saved_version_never_changes_when_its_companion_files_do(
        conf: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "cal"
    shutil.copytree(DATA_DIR, folder)
    cal = load_calibration(folder / "default.toml")
    with Clinic.open(conf, unlock(conf, PASS)) as clinic:
        version = clinic.save(cal, "Dr A", "from a folder")
    text, digest = version.toml_text, version.content_hash
    assert "companions" not in text and "[[checks]]" in text and "[[flags]]" in text
    # the companion files change (or vanish) afterwards ...
    checks = folder / "checks.toml"
    checks.write_text(checks.read_text(encoding="utf-8").replace(
        'id = "stabilizer_by_training_age"', 'id = "renamed"'), encoding="utf-8")
    (folder / "fixes.toml").unlink()
    # ... the stored version reads back byte for byte, with the checks it was saved with
    with Store(conf.store_path) as store:
        again = store.get_version(version.id)
    assert again.toml_text.encode("utf-8") == text.encode("utf-8")
    assert again.content_hash == digest
    ids = [c.id for c in parse_calibration(again.toml_text).checks]
    assert "stabilizer_by_training_age" in ids and "renamed" not in ids
