"""Memory bombs past the declared-size caps (issue 26.5): a zip member compressed with
bzip2 or LZMA is refused before anything is inflated (zipfile inflates those without a
bound on the output), a corrupt deflate member is a ModelFileError, and an HDF5 dataset
stored in chunks far larger than itself is refused before its chunk is inflated."""
import io
import struct
import tracemalloc
import zipfile

import h5py
import numpy as np
import pytest

from unrolled.io.h5_sandbox import open_h5
from unrolled.io.safety import ModelFileError, SafeZip, UnsupportedModelError, read_dataset
from unrolled.layers import Dense, Input, SimpleRNN
from unrolled.models import Sequential, load_model


def _lie_about_size(data, name, size):
    """The archive with member ``name``'s uncompressed size set to ``size`` in both its
    local header and its central directory entry (the CRC left as it is)."""
    data = bytearray(data)
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo(name)
    struct.pack_into("<I", data, info.header_offset + 22, size)
    central = data.find(b"PK\x01\x02")
    while central >= 0:
        n = struct.unpack_from("<H", data, central + 28)[0]
        if data[central + 46:central + 46 + n] == name.encode():
            struct.pack_into("<I", data, central + 24, size)
            break
        central = data.find(b"PK\x01\x02", central + 4)
    return bytes(data)


def _read_lying_bomb(method, error, match):
    """Read a member of 64 MB of zeros, compressed with ``method``, that declares 10 bytes:
    it must raise ``error`` having allocated less than 16 MB on the way."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as z:
        z.writestr("config.json", b"\0" * 2 ** 26)
    bomb = _lie_about_size(buf.getvalue(), "config.json", 10)
    tracemalloc.start()
    try:
        with pytest.raises(error, match=match):
            SafeZip(bomb, "bomb.keras").read("config.json")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 ** 24, peak


def _recompressed(path, method):
    out = io.BytesIO()
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w", compression=method) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    return out.getvalue()


@pytest.mark.parametrize("method,word", [(zipfile.ZIP_BZIP2, "bzip2"),
                                         (zipfile.ZIP_LZMA, "LZMA")])
def test_bzip2_and_lzma_members_are_refused_before_inflating(tmp_path, method, word):
    model = Sequential([Input((3, 2)), SimpleRNN(4), Dense(1)])
    path = tmp_path / "m.keras"
    model.save(path)
    other = tmp_path / "other.keras"
    other.write_bytes(_recompressed(path, method))
    with pytest.raises(UnsupportedModelError, match=f"compressed with {word}"):
        load_model(other)
    # A member that lies about its size: 64 MB of zeros declared as 10 bytes. Refused
    # before zipfile inflates it (which it would do whole, in one call).
    _read_lying_bomb(method, UnsupportedModelError, word)


def test_a_corrupt_deflate_member_is_a_model_file_error(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("config.json", b'{"class_name": "Sequential"}' * 50)
    data = bytearray(buf.getvalue())
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo("config.json")
    start = info.header_offset + 30 + len("config.json")
    data[start:start + 8] = b"\xff" * 8                 # garbage where the deflate stream is
    with pytest.raises(ModelFileError, match="cannot be read"):
        SafeZip(bytes(data), "x.keras").read("config.json")


def test_a_deflate_member_that_lies_about_its_size_inflates_no_further(tmp_path):
    _read_lying_bomb(zipfile.ZIP_DEFLATED, ModelFileError, "cannot be read")


def test_an_hdf5_chunk_far_larger_than_its_dataset_is_refused(tmp_path):
    path = tmp_path / "chunky.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("small", data=np.arange(4, dtype="float32"), maxshape=(None,),
                         chunks=(2 ** 25,), compression="gzip")       # a 128 MB chunk
        f.create_dataset("fine", data=np.arange(4, dtype="float32"), compression="gzip")
    assert path.stat().st_size < 2 ** 20
    with open_h5(path.read_bytes(), path) as f:
        np.testing.assert_array_equal(read_dataset(f["fine"], (4,), "fine", path, 1 << 20),
                                      np.arange(4, dtype="float32"))
        with pytest.raises(ModelFileError, match="chunks of 134217728 bytes"):
            read_dataset(f["small"], (4,), "small", path, 1 << 20)
