"""Drift detectors: River's statistics behind daskscale's interface, JSON checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest
from river import drift as river_drift

from daskscale.errors import SchemaError
from daskscale.online.drift import ADWIN, DDM, PageHinkley, river_state, set_river_state


def _errors(seed=0, n_batches=80, rows=50, flip_at=40):
    """Per-batch error bits: 10% error, then 60% from ``flip_at`` on."""
    rng = np.random.default_rng(seed)
    return [rng.random(rows) < (0.1 if i < flip_at else 0.6) for i in range(n_batches)]


def _decisions(det, batches, use_bits):
    out = []
    for e in batches:
        out.append(det.update(int(e.sum()), len(e), errors=e) if use_bits else det.update(int(e.sum()), len(e)))
    return out


def test_ddm_is_rivers_ddm_fed_the_row_bits():
    batches = _errors()
    ours = _decisions(DDM(min_rows=200), batches, use_bits=True)
    ref, theirs = river_drift.binary.DDM(warm_start=200), []
    for e in batches:  # River's own loop, restarted after a drift as daskscale does
        verdict = None
        for bit in e:
            ref.update(bool(bit))
            if ref.drift_detected:
                verdict, ref = "drift", river_drift.binary.DDM(warm_start=200)
                break
        else:
            verdict = "warning" if ref.warning_detected else None
        theirs.append(verdict)
    assert ours == theirs
    assert "drift" in ours[40:43] and "drift" not in ours[:40]


@pytest.mark.parametrize("make, use_bits", [(lambda: DDM(min_rows=200), True), (lambda: DDM(min_rows=200), False),
                                            (lambda: PageHinkley(threshold=0.3, min_batches=5), False),
                                            (lambda: ADWIN(), False)])
@pytest.mark.parametrize("cut", [3, 39, 41, 60])
def test_a_restored_detector_decides_as_the_uninterrupted_one(make, use_bits, cut):
    batches = _errors(seed=cut) + _errors(seed=cut + 1, flip_at=0)[:20]
    whole = _decisions(make(), batches, use_bits)
    assert "drift" in whole
    first = make()
    head = _decisions(first, batches[:cut], use_bits)
    state = json.loads(json.dumps(first.get_state()))  # what a checkpoint's metadata holds
    back = type(first)(**first.get_params())
    back.set_state(state)
    assert back.get_state() == first.get_state()
    assert head + _decisions(back, batches[cut:], use_bits) == whole


def test_page_hinkley_watches_only_a_rise_of_the_error():
    ph = PageHinkley(threshold=0.3, min_batches=5)
    falling = [ph.update(8 if i < 20 else 1, 10) for i in range(60)]
    assert "drift" not in falling
    rising = [ph.update(9, 10) for _ in range(10)]
    assert "drift" in rising


def test_ddm_warns_before_it_drifts_on_a_gradual_rise():
    d, seen = DDM(min_rows=500), []
    rng = np.random.default_rng(3)
    for i in range(200):
        e = rng.random(100) < min(0.5, 0.1 + max(0, i - 50) * 0.004)
        seen.append(d.update(int(e.sum()), 100, errors=e))
    assert "warning" in seen and "drift" in seen
    assert seen.index("warning") < seen.index("drift")


def test_river_state_refuses_a_field_it_cannot_write():
    det = river_drift.PageHinkley()
    det._unexpected = [1, 2]
    with pytest.raises(SchemaError, match="_unexpected is a list"):
        river_state(det)


def test_river_state_round_trips_infinity_and_means():
    det = river_drift.binary.DDM()
    for bit in [0, 1, 0, 0] * 20:
        det.update(bit)
    state = json.loads(json.dumps(river_state(det)))
    fresh = river_drift.binary.DDM()
    set_river_state(fresh, state)
    assert fresh._p.n == det._p.n and fresh._p.get() == det._p.get() and fresh._ps_min == det._ps_min
    assert river_state(river_drift.binary.DDM())["_ps_min"] == "inf"
