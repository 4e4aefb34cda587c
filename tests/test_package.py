"""Package-level promises: light import, version, layout."""

import doctest
import subprocess
import sys
from pathlib import Path

import pytest

import sklearn_derand


def test_version_is_a_string():
    assert isinstance(sklearn_derand.__version__, str)


def test_import_does_not_import_torch():
    code = "import sys, sklearn_derand; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


ROOT = Path(__file__).resolve().parents[1]


def test_readme_example_prints_what_its_comments_say(capsys):
    text = (ROOT / "README.md").read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "README.md", "exec"), {})
    distortion, cut = capsys.readouterr().out.splitlines()
    assert float(distortion) < 0.2
    cut_value, upper_bound, gap = map(float, cut.split())
    assert cut_value == 3060
    assert upper_bound == pytest.approx(3191.8, abs=0.1)
    assert gap == pytest.approx(1 - cut_value / upper_bound)


def test_getting_started_page_doctests_pass():
    result = doctest.testfile(
        str(ROOT / "docs" / "getting_started.rst"),
        module_relative=False,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
    )
    assert result.attempted >= 10
    assert result.failed == 0


def test_getting_started_installs_with_the_readme_command():
    """No release exists on the package index: the docs must not promise
    ``pip install sklearn-derand`` and must show the README's command."""
    readme = (ROOT / "README.md").read_text()
    run_it = readme.split("## Run it", 1)[1].split("```bash\n", 1)[1]
    command = run_it.split("```", 1)[0].strip()
    page = (ROOT / "docs" / "getting_started.rst").read_text()
    assert command in page
    assert "pip install sklearn-derand" not in page
