"""The `ember` console script."""

import subprocess
import sys

import ember


def test_version_flag_prints_the_package_version():
    out = subprocess.run([sys.executable, "-m", "ember.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0
    assert out.stdout.strip() == f"ember {ember.__version__}"
