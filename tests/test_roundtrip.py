"""Round trips through the Python API: every kind of input comes back byte-exact."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gmixpy
from gmixpy.archive import decode_header


@pytest.mark.parametrize("data", [
    b"",
    b"x",
    b"\x00",
    b"\xff" * 3,
    bytes(range(256)),
    b"abc" * 2000,
    b"\x00" * 5000,
], ids=["empty", "one-byte", "zero-byte", "ff", "all-bytes", "repetitive", "zeros"])
def test_round_trip_small(data):
    blob = gmixpy.compress(data, preset="tiny")
    assert gmixpy.decompress(blob) == data
    header = decode_header(blob)
    assert header.length == len(data) and header.preset == "tiny"


def test_round_trip_random():
    data = os.urandom(4000)
    blob = gmixpy.compress(data, preset="tiny")
    assert gmixpy.decompress(blob) == data
    assert len(blob) < len(data) + 100  # incompressible data costs little more than the header


def test_round_trip_text(sample_text):
    blob = gmixpy.compress(sample_text, preset="tiny")
    assert gmixpy.decompress(blob) == sample_text
    assert len(blob) * 8 / len(sample_text) < 3.8


def test_round_trip_binary(binary_sample):
    blob = gmixpy.compress(binary_sample, preset="tiny")
    assert gmixpy.decompress(blob) == binary_sample
    assert len(blob) < len(binary_sample) * 0.6


def test_repetitive_compresses_well():
    data = b"the quick brown fox jumps over the lazy dog. " * 200
    blob = gmixpy.compress(data, preset="tiny")
    assert len(blob) < len(data) / 20


def test_compression_is_deterministic(sample_text):
    assert gmixpy.compress(sample_text[:2000], preset="tiny") == gmixpy.compress(sample_text[:2000], preset="tiny")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_round_trip_hypothesis(data):
    assert gmixpy.decompress(gmixpy.compress(data, preset="tiny")) == data


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from([b"a", b"b", b"ab", b"\n", b"the ", b"\x00\x01"]), max_size=300))
def test_round_trip_hypothesis_structured(parts):
    data = b"".join(parts)
    assert gmixpy.decompress(gmixpy.compress(data, preset="tiny")) == data


def test_the_api_does_not_load_the_run_and_model_file_code():
    """gmixpy.compress and gmixpy.decompress stay below the runs and the model files: importing them does not load
    serialize (model files and checkpoints), runs (training, checkpointed compression) or the command line."""
    code = ("import sys, gmixpy; assert gmixpy.decompress(gmixpy.compress(b'abc', preset='tiny')) == b'abc'; "
            "print(sorted(m for m in sys.modules if m.split('.')[:2] in (['gmixpy', 'serialize'], ['gmixpy', 'runs'],"
            " ['gmixpy', 'cli'])))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == b"[]"
