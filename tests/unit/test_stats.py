"""The tests decide runs agree with scipy, without decide importing scipy or pandas."""

import subprocess
import sys

import pytest
from scipy import stats

from retrain.monitor.stats import adjust, normal_sf, two_proportions
from tests.helpers import ROOT


@pytest.mark.parametrize("z", [-9.0, -3.1, -0.8, -0.2, 0.0, 0.5, 0.7071, 1.96, 4.0, 8.5, 37.0])
def test_normal_tail_equals_scipys(z):
    assert normal_sf(z) == pytest.approx(stats.norm.sf(z), rel=1e-12, abs=1e-300)


def test_corrections_match_their_definitions():
    p = [0.01, 0.04, 0.03, 0.2]
    assert adjust(p, "holm") == pytest.approx([0.04, 0.09, 0.09, 0.2])
    assert adjust(p, "bh") == pytest.approx(list(stats.false_discovery_control(p, method="bh")))
    assert adjust([], "holm") == []


def test_two_proportion_test_matches_chi_square_on_the_2x2_table():
    p = two_proportions(60, 200, 40, 200, "two-sided")
    expected = stats.chi2_contingency([[60, 140], [40, 160]], correction=False).pvalue
    assert p == pytest.approx(expected, abs=1e-9)
    assert two_proportions(60, 200, 40, 200, "greater") == pytest.approx(expected / 2, abs=1e-9)


def test_decide_stage_starts_without_pandas_or_scipy():
    code = (
        "import runpy, sys; sys.path.insert(0, 'stages'); import decide; "
        "print(sorted(m for m in ('pandas', 'scipy', 'sklearn', 'pyarrow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
