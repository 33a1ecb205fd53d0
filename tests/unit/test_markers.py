"""`make test-fast` runs no pipeline: a test that uses a reproduced workspace is slow."""

import subprocess
import sys

from tests.conftest import REPO


def test_tests_on_a_reproduced_workspace_are_deselected_by_test_fast():
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-m",
            "not slow",
            "tests/integration/test_results.py",
            "tests/integration/test_plots.py",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    selected = [line for line in done.stdout.splitlines() if "::" in line]
    assert selected, done.stdout  # test_plots has fast tests on a hand-made workspace
    assert not any("test_results.py" in line for line in selected), selected
    assert not any("reproduced" in line for line in selected)
