"""Package-level promises: light import, version, layout."""

import subprocess
import sys

import sklearn_derand


def test_version_is_a_string():
    assert isinstance(sklearn_derand.__version__, str)


def test_import_does_not_import_torch():
    code = "import sys, sklearn_derand; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
