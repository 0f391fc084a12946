"""The file-format registry (k5.convert.formats): lookup by extension, overrides, registration rules, and that
every converter package present registers its formats in its __init__."""

from __future__ import annotations

import importlib.util

import pytest

from k5.convert import formats
from k5.convert.formats import PACKAGES, FileFormat, all_formats, format_for, get_format, register_format
from k5.errors import ConversionError


@pytest.fixture
def scratch_formats():
    """Formats registered by a test are removed afterwards."""
    all_formats()
    before = dict(formats._FORMATS)
    yield
    formats._FORMATS.clear()
    formats._FORMATS.update(before)


def test_every_converter_package_present_registers_a_format():
    registered = all_formats()
    owners = {fn.__module__ for f in registered for fn in (f.read, f.write, f.run) if fn is not None}
    present = [p for p in PACKAGES if importlib.util.find_spec(p) is not None]
    assert {"k5.convert.k5file", "k5.convert.onnx"} <= set(present)
    for package in ("k5.convert.k5file", "k5.convert.onnx"):  # (others may register no format yet)
        assert any(o == package or o.startswith(package + ".") for o in owners), package
    assert len({f.name for f in registered}) == len(registered)


def test_lookup_by_extension_and_override(scratch_formats):
    assert format_for("model.onnx").name == "onnx" and format_for("DIR/MODEL.ONNX").name == "onnx"
    assert format_for("model.k5").name == "k5"
    assert format_for("model.bin", "onnx").name == "onnx"
    register_format(FileFormat("weights-k5", (".weights.k5",), "test: a longer suffix"))
    assert format_for("a.weights.k5").name == "weights-k5" and format_for("a.k5").name == "k5"
    register_format(FileFormat("folder", (), "test: a directory signature", matches=lambda p: p.endswith("/saved")))
    assert format_for("x/saved").name == "folder"
    with pytest.raises(ConversionError, match=r"from its extension.*--from/--to"):
        format_for("model.unknown")
    with pytest.raises(ConversionError, match=r"unknown format 'nope'. Expected one of \[.*'k5'.*'onnx'"):
        get_format("nope")


def test_registering_a_name_twice_is_an_error(scratch_formats):
    with pytest.raises(ValueError, match="registered twice"):
        register_format(FileFormat("onnx", (".onnx2",), "test: a duplicate name"))


def test_availability_and_install_hint():
    missing = FileFormat("x", (".x",), "test", extra="x", requires=("k5_no_such_module",))
    assert not missing.available() and missing.install_hint() == "pip install 'k5[x]'"
    assert not FileFormat("z", (".z",), "test", requires=("k5_no_such_pkg.sub",)).available()  # no parent package
    assert FileFormat("y", (".y",), "test", requires=("numpy",)).available()
