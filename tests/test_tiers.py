"""The test tiers stay in step: the markers that tests/conftest.py adds from fixtures
(tests.tiers.FIXTURE_MARKERS) are declared in pyproject.toml and all left out by ``make
test-fast``; every collected test carries the markers of the fixtures it uses; and the CLI
runs as a child process only through the ``salsweep_process`` fixture, so that no such test
slips into the fast tier unmarked."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from tests.tiers import FIXTURE_MARKERS

ROOT = Path(__file__).resolve().parents[1]


def test_tier_markers_are_declared_and_test_fast_leaves_them_out() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = {line.split(":")[0] for line in config["tool"]["pytest"]["ini_options"]["markers"]}
    assert set(FIXTURE_MARKERS.values()) <= declared
    found = re.search(r"^FAST_MARKERS := not \((.+)\)$", (ROOT / "Makefile").read_text(), re.M)
    assert found is not None, "the Makefile has no FAST_MARKERS line"
    # Beside the fixtures' markers, `slow` (by hand: simulations, fuzzing).
    assert sorted(found.group(1).split(" or ")) == sorted({*FIXTURE_MARKERS.values(), "slow"})


def test_tests_carry_the_markers_of_their_fixtures(request: pytest.FixtureRequest) -> None:
    items = request.session.items  # the selected ones: all of them in `make test`
    assert request.node in items
    for item in items:
        for fixture, marker in FIXTURE_MARKERS.items():
            if fixture in getattr(item, "fixturenames", ()):
                assert item.get_closest_marker(marker) is not None, (item.nodeid, marker)


def test_the_cli_runs_as_a_child_process_only_through_the_fixture() -> None:
    spawns_cli = re.compile(r"""["']cli\.py["']""")
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "tests").rglob("*.py"))
        if path.name != "process_helpers.py" and spawns_cli.search(path.read_text())
    ]
    assert offenders == [], "use the salsweep_process fixture (tests/process_helpers.py)"
