"""Mode coverage metrics on hand-made sample sets."""

import math

import numpy as np
import pytest

import minigen as mg
from minigen import data
from minigen.metrics import mode_metrics


def _around(modes, per_mode, std, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.repeat(np.array(modes), per_mode, axis=0)
    return centres + rng.standard_normal(centres.shape) * std


def test_samples_on_exactly_five_modes_report_five(backend):
    modes = data.toy_modes("ring").modes
    samples = _around(modes[:5], 500, 0.02 * 0.5)
    result = mode_metrics(mg.Tensor(samples), "ring")
    assert result["modes_covered"] == 5 and result["modes_total"] == 8
    assert result["high_quality_fraction"] == 1.0
    assert result["reverse_kl"] == pytest.approx(math.log(8 / 5), abs=1e-9)   # uniform over 5 of 8


def test_perfect_grid_samples(backend):
    modes = data.toy_modes("grid").modes
    result = mode_metrics(mg.Tensor(_around(modes, 100, 0.01)), "grid")
    assert result == {"modes_covered": 25, "modes_total": 25, "high_quality_fraction": 1.0,
                      "reverse_kl": pytest.approx(0.0, abs=1e-12)}


def test_far_samples_are_low_quality_and_cover_nothing(backend):
    modes = np.array(data.toy_modes("ring").modes)
    far = modes[:3] * 1.2                       # 0.4 away from the ring: 20 standard deviations
    near = _around(modes[3:4], 10, 0.001)
    result = mode_metrics(mg.Tensor(np.concatenate([far, near])), "ring")
    assert result["modes_covered"] == 1
    assert result["high_quality_fraction"] == pytest.approx(10 / 13)
    assert result["reverse_kl"] == pytest.approx(math.log(8))
    nothing = mode_metrics(mg.Tensor(far), "ring")
    assert nothing["modes_covered"] == 0 and nothing["reverse_kl"] == math.inf


def test_threshold_is_three_standard_deviations():
    centre = np.array(data.toy_modes("ring").modes[0])
    inside = centre + [0.0, 0.0599]
    outside = centre + [0.0, 0.0601]
    assert mode_metrics(mg.Tensor([inside, outside]), "ring")["high_quality_fraction"] == 0.5


def test_shape_is_checked():
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        mode_metrics(mg.zeros(4, 3), "ring")
