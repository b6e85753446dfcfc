"""The examples in the docstrings run and give what they show."""

import doctest

import ccem
import ccem._ccem


def test_docstring_examples():
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    tests = [t for m in (ccem, ccem._ccem) for t in finder.find(m) if t.examples]
    names = {t.name.split(".")[-1] for t in tests}
    assert set(ccem.__all__) - {"__version__"} <= names, "every function has an example"
    for t in tests:
        runner.run(t)
    assert runner.failures == 0


def test_help_is_useful():
    doc = ccem.theory.__doc__
    assert "logit_bias" in doc and "-b" in doc and "Example" in doc
    assert ccem.theory.__text_signature__.startswith("(n, t=None, b=None, *, relative_bias")
    for name in ccem.__all__[1:]:
        assert "Example" in getattr(ccem, name).__doc__, name
