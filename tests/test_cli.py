"""The `ember` console script."""

import subprocess
import sys

import ember


def test_version_flag_prints_the_package_version():
    out = subprocess.run([sys.executable, "-m", "ember.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0
    assert out.stdout.strip() == f"ember {ember.__version__}"


def test_console_script_is_installed_with_the_package():
    from pathlib import Path

    script = Path(sys.executable).parent / "ember"
    assert script.exists(), f"pip did not install the `ember` console script next to {sys.executable}"
    out = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert out.stdout.strip() == f"ember {ember.__version__}"
