"""The README's Python example runs as written (issue 17)."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_python_example_runs(capsys):
    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "the README has a Python example"
    for code in blocks:
        exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    # The comment beside the print states the rounded values.
    phase, c_star, s_pos = out.split()[:3]
    assert phase == "intermediate"
    assert round(float(c_star), 5) == 0.28743
    assert round(float(s_pos), 5) == 0.42515
