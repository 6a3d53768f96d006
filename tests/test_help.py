"""What a user reads: help() on the public functions shows one clean signature each,
and the rule with the state arrays named."""

import inspect
import pydoc
import re

import pytest

import pyrmsprop
import pyrmsprop.functional as functional


def _public_functions():
    names = sorted(set(pyrmsprop.__all__) | set(functional.__all__))
    for name in names:
        obj = getattr(pyrmsprop, name, None) or getattr(functional, name)
        if callable(obj) and not isinstance(obj, type):
            yield name, obj


@pytest.mark.parametrize("name, func", list(_public_functions()))
def test_help_shows_one_clean_signature(name, func):
    text = pydoc.render_doc(func, renderer=pydoc.plaintext)
    assert text.count(f"{name}(") == 1, text[:600]
    # pydoc of Python 3.13+ puts a long signature one parameter per line: compare with
    # the line breaks and indentation (and a trailing comma) taken out
    flat = re.sub(r",?\n\s*\)", ")", re.sub(r"\(\n\s*", "(", text))
    flat = re.sub(r",\n\s*", ", ", flat)
    assert str(inspect.signature(func)) in flat, text[:600]
    # no C types from the binding (Cython's embedded signatures spelled "bint x", "bool x")
    assert not re.search(r"\b(bint|bool|double|int|long|object) [a-z_]+=", text), text[:600]


def test_update_docstrings_say_which_state_array_is_which():
    doc = pyrmsprop.adam_update.__doc__
    assert "v = exp_avg_sq" in doc and "max_exp_avg_sq" in doc
