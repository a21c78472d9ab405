"""IDX reader/writer: round trips, byte layout against the format spec, every corrupt case."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from trainlab.data.idx import idx_bytes, is_gzip, read_idx, write_idx
from trainlab.errors import DataError

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


@pytest.mark.parametrize("compress", [True, False])
def test_uint8_images_and_labels_round_trip(tmp_path, compress):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=7, dtype=np.uint8)
    for name, arr in [("img", images), ("lab", labels)]:
        path = write_idx(tmp_path / name, arr, gzip=compress)
        assert is_gzip(path) == compress
        back = read_idx(path)
        assert back.dtype == arr.dtype and back.shape == arr.shape
        np.testing.assert_array_equal(back, arr)
        assert back.flags.writeable


@settings(max_examples=40, deadline=None)
@given(
    arr=st.sampled_from(DTYPES).flatmap(
        lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5),
                              elements={"allow_nan": False} if np.dtype(dt).kind == "f" else None)
    ),
    compress=st.booleans(),
)
def test_round_trip_any_shape_and_dtype(tmp_path_factory, arr, compress):
    path = tmp_path_factory.mktemp("rt") / "a.idx"
    write_idx(path, arr, gzip=compress)
    back = read_idx(path)
    assert back.dtype == arr.dtype.newbyteorder("=")
    assert back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)


def test_byte_layout_matches_the_spec():
    # The spec: 0x00 0x00, type byte, ndim byte, big-endian uint32 dims, big-endian data.
    labels = np.array([3, 1, 4], dtype=np.uint8)
    assert idx_bytes(labels) == b"\x00\x00\x08\x01" + struct.pack(">I", 3) + bytes([3, 1, 4])
    ints = np.array([[1, -2]], dtype=np.int32)
    assert idx_bytes(ints) == b"\x00\x00\x0c\x02" + struct.pack(">II", 1, 2) + struct.pack(">ii", 1, -2)


def test_hand_built_big_endian_file_reads(tmp_path):
    path = tmp_path / "f.idx"
    path.write_bytes(b"\x00\x00\x0d\x01" + struct.pack(">I", 2) + struct.pack(">ff", 1.5, -0.25))
    np.testing.assert_array_equal(read_idx(path), np.array([1.5, -0.25], dtype=np.float32))


def test_compression_is_decided_by_magic_not_name(tmp_path):
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    raw_named_gz = write_idx(tmp_path / "raw.gz", arr, gzip=False)
    gz_named_raw = write_idx(tmp_path / "packed-idx3-ubyte", arr, gzip=True)
    np.testing.assert_array_equal(read_idx(raw_named_gz), arr)
    np.testing.assert_array_equal(read_idx(gz_named_raw), arr)


def test_gzip_output_is_reproducible(tmp_path):
    arr = np.arange(100, dtype=np.uint8)
    a = write_idx(tmp_path / "a.gz", arr).read_bytes()
    b = write_idx(tmp_path / "b.gz", arr).read_bytes()
    assert a == b


def _expect_data_error(path, *words):
    with pytest.raises(DataError) as info:
        read_idx(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    for word in words:
        assert word in message
    return message


@pytest.mark.parametrize("compress", [True, False])
def test_bad_magic(tmp_path, compress):
    body = b"\x12\x34\x08\x01" + struct.pack(">I", 1) + b"\x05"
    path = tmp_path / "bad"
    path.write_bytes(gzip.compress(body) if compress else body)
    _expect_data_error(path, "magic")


@pytest.mark.parametrize("compress", [True, False])
def test_truncated_data(tmp_path, compress):
    body = idx_bytes(np.zeros((5, 4, 4), dtype=np.uint8))[:-10]
    path = tmp_path / "short"
    path.write_bytes(gzip.compress(body) if compress else body)
    _expect_data_error(path, "truncated")


def test_truncated_header(tmp_path):
    path = tmp_path / "hdr"
    path.write_bytes(b"\x00\x00\x08\x03" + struct.pack(">I", 5))  # 3 dims declared, 1 given
    _expect_data_error(path, "truncated")
    path.write_bytes(b"\x00\x00")
    _expect_data_error(path, "truncated")


def test_truncated_gzip_stream(tmp_path):
    packed = gzip.compress(idx_bytes(np.arange(1000, dtype=np.int32)))
    path = tmp_path / "cut.gz"
    path.write_bytes(packed[: len(packed) // 2])
    _expect_data_error(path)


def test_corrupt_gzip_crc(tmp_path):
    packed = bytearray(gzip.compress(idx_bytes(np.arange(50, dtype=np.uint8))))
    packed[-8] ^= 0xFF  # CRC32 field of the gzip trailer
    path = tmp_path / "crc.gz"
    path.write_bytes(bytes(packed))
    _expect_data_error(path)


def test_unsupported_dtype_code(tmp_path):
    path = tmp_path / "code"
    path.write_bytes(b"\x00\x00\x0a\x01" + struct.pack(">I", 1) + b"\x00")
    _expect_data_error(path, "0x0a")


def test_trailing_bytes(tmp_path):
    path = tmp_path / "long"
    path.write_bytes(idx_bytes(np.zeros(3, dtype=np.uint8)) + b"\x00")
    _expect_data_error(path, "longer")


def test_missing_file(tmp_path):
    _expect_data_error(tmp_path / "nope.gz", "no such file")


def test_write_refuses_unsupported_dtype(tmp_path):
    with pytest.raises(ValueError):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.uint16))
    assert not list(tmp_path.iterdir())


def _peak_bytes(action):
    """Peak bytes Python and NumPy allocated while ``action`` ran (NumPy reports to tracemalloc)."""
    import tracemalloc

    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("compress", [True, False])
def test_lying_header_is_refused_before_allocating(tmp_path, compress):
    body = b"\x00\x00\x08\x03" + struct.pack(">III", 1024, 1024, 1024) + bytes(100)  # declares 1 GiB, holds 100 B
    path = tmp_path / "liar"
    path.write_bytes(gzip.compress(body) if compress else body)

    def read():
        with pytest.raises(DataError, match="truncated IDX file"):
            read_idx(path)

    assert _peak_bytes(read) < 8 * 2**20  # gzip is counted in 1 MiB chunks


@pytest.mark.parametrize("compress", [True, False])
def test_header_beyond_memory_is_refused(tmp_path, compress):
    body = b"\x00\x00\x0e\x02" + struct.pack(">II", 2**32 - 1, 2**32 - 1)  # 2**67 bytes of float64
    path = tmp_path / "huge"
    path.write_bytes(gzip.compress(body) if compress else body)
    _expect_data_error(path, "truncated" if not compress else "free")


def test_gzip_bomb_within_its_header_is_refused_by_memory(tmp_path, monkeypatch):
    import trainlab.device

    path = write_idx(tmp_path / "zeros.gz", np.zeros((64, 1024), dtype=np.uint8))  # honest header, 64 KiB
    monkeypatch.setattr(trainlab.device, "available_memory", lambda device="cpu": 32 * 1024)
    _expect_data_error(path, "needs", "free")


@pytest.mark.parametrize("ndim", [33, 255])
def test_too_many_dimensions(tmp_path, ndim):
    path = tmp_path / "dims"
    path.write_bytes(b"\x00\x00\x08" + bytes([ndim]) + struct.pack(f">{ndim}I", *[1] * ndim) + b"\x07")
    _expect_data_error(path, f"{ndim} dimensions")


@given(code=st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E]), ndim=st.integers(0, 255),
       dims=st.lists(st.integers(0, 2**32 - 1), min_size=0, max_size=255),
       payload=st.binary(max_size=64), compress=st.booleans())
@settings(max_examples=150, deadline=None)
def test_any_header_reads_or_is_one_data_error(tmp_path_factory, code, ndim, dims, payload, compress):
    body = bytes([0, 0, code, ndim]) + struct.pack(f">{len(dims)}I", *dims) + payload
    path = tmp_path_factory.mktemp("gen") / "x"
    path.write_bytes(gzip.compress(body) if compress else body)
    result = []

    def read():
        try:
            result.append(read_idx(path))
        except DataError as exc:
            assert "\n" not in str(exc)

    assert _peak_bytes(read) < 8 * 2**20  # gzip is counted in 1 MiB chunks
    if result:  # the oracle: what was read is exactly the bytes after the header
        assert result[0].nbytes == len(body) - 4 - 4 * result[0].ndim
