"""The package root: a cheap import and a curated, resolvable public API."""

from __future__ import annotations

import subprocess
import sys

import pytest

import odeattn


def test_import_is_lazy():
    code = "import sys, odeattn; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name", odeattn.__all__)
def test_every_public_name_resolves(name):
    assert getattr(odeattn, name) is not None


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'odient'; did you mean 'odeint'"):
        _ = odeattn.odient
