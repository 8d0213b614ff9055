"""Reading untrusted model files: they are data, never code.

Every file reader (``unrolled.saving``, ``unrolled.io``) goes through these checks before it
allocates or parses:

* a file is read whole into memory only after its size is checked (missing → a
  ``FileNotFoundError``; empty or too large → ``ModelFileError``);
* zip archives (``.keras``, ``.npz``) are read member by member, **by exact expected name**,
  into memory; nothing is ever extracted to disk, and an archive holding a member whose
  name climbs out (``../x``, ``/etc/x``) or appears twice is refused;
* a member's declared size is checked before it is read (a zip bomb fails fast), and an
  ``.npy`` header's declared shape is checked against the bytes that are really there;
* HDF5 files are parsed in a separate process with a time limit (``h5_sandbox``: a
  corrupted file can make the HDF5 library loop forever); soft links, external links,
  external storage and virtual datasets are refused, and every attribute's and dataset's
  declared size is checked before it is read;
* nothing is unpickled: ``np.load`` always runs with ``allow_pickle=False``.

The errors, all subclasses of ``ValueError`` (so ``except ValueError`` catches them):

``ModelFileError``
    the file is not a readable model or weights file: empty, truncated, random bytes, a
    missing archive member, malformed JSON, a weight of the wrong shape.
``UnsafeModelError(ModelFileError)``
    the file asks for something that could run code or reach outside it: a ``Lambda``
    layer, a custom (registered) object, an HDF5 link, an escaping zip member name.
``UnsupportedModelError(ModelFileError)``
    a layer class or an option that ``unrolled`` does not implement; the message names it
    and lists what is supported.

A missing file raises ``FileNotFoundError`` (an ``OSError``).
"""
import io
import math
import os
import zipfile
import zlib

import numpy as np

MAX_FILE_BYTES = 2 ** 32           # 4 GiB: refuse larger files before reading them
MAX_MEMBER_BYTES = 2 ** 32
MAX_JSON_BYTES = 64 * 2 ** 20      # a config.json larger than 64 MiB is not a model config
MAX_COMPRESSION_RATIO = 200        # a member inflating more than this is a zip bomb

ZIP_MAGIC = b"PK\x03\x04"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


class ModelFileError(ValueError):
    """The file is not a readable model or weights file (see the module docstring)."""


class UnsafeModelError(ModelFileError):
    """The file asks for code or for something outside itself; it is refused."""


class UnsupportedModelError(ModelFileError):
    """A layer class or option that unrolled does not implement."""


def read_file(path, max_bytes=MAX_FILE_BYTES):
    """The bytes of ``path``, after checking it exists, is a file, and is not empty or huge."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No such file: {path!r}.")
    if not os.path.isfile(path):
        raise ModelFileError(f"{path!r} is not a regular file.")
    size = os.path.getsize(path)
    if size == 0:
        raise ModelFileError(f"{path!r} is empty (0 bytes): it holds no model or weights.")
    if size > max_bytes:
        raise ModelFileError(f"{path!r} is {size} bytes, more than the {max_bytes}-byte limit.")
    with open(path, "rb") as f:
        return f.read()


def check_magic(data, magic, path, what):
    if not data.startswith(magic):
        raise ModelFileError(
            f"{path!r} is not {what}: it starts with bytes {data[:8]!r}, expected {magic!r}. "
            "The file may be truncated, corrupted, or of another format."
        )


def _check_member_name(name, path):
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or ".." in parts or (len(name) > 1 and name[1] == ":"):
        raise UnsafeModelError(
            f"{path!r} holds an archive member named {name!r}, which points outside the "
            "archive. Such files are refused (nothing is ever extracted)."
        )


class SafeZip:
    """A zip archive held in memory whose members are read by exact name, never extracted."""

    def __init__(self, data, path):
        self.path = path
        check_magic(data, ZIP_MAGIC, path, "a zip archive")
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(data))
            infos = self._zip.infolist()
        except (zipfile.BadZipFile, EOFError, ValueError, OSError) as e:
            raise ModelFileError(f"{path!r} is not a readable zip archive ({e}); it may be "
                                 "truncated or corrupted.") from None
        names = [i.filename for i in infos]
        for name in names:
            _check_member_name(name, path)
        if len(set(names)) != len(names):
            raise UnsafeModelError(f"{path!r} holds two archive members with the same name.")
        self._infos = {i.filename: i for i in infos}

    def names(self):
        return list(self._infos)

    def has(self, name):
        return name in self._infos

    def read(self, name, max_bytes=MAX_MEMBER_BYTES):
        """The bytes of member ``name``; its declared size is checked first."""
        info = self._infos.get(name)
        if info is None:
            raise ModelFileError(
                f"{self.path!r} has no member {name!r}; it holds {sorted(self._infos)}."
            )
        if info.file_size > max_bytes:
            raise ModelFileError(f"Member {name!r} of {self.path!r} declares {info.file_size} "
                                 f"bytes, more than the {max_bytes}-byte limit.")
        if info.compress_size and info.file_size / info.compress_size > MAX_COMPRESSION_RATIO:
            raise UnsafeModelError(f"Member {name!r} of {self.path!r} would inflate "
                                   f"{info.file_size / info.compress_size:.0f}x: a zip bomb.")
        if info.flag_bits & 0x1:
            raise UnsupportedModelError(
                f"Member {name!r} of {self.path!r} is encrypted; unrolled reads unencrypted "
                "archives only (Keras and NumPy never encrypt). Decrypt it and save it again.")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            # zipfile inflates bzip2 and LZMA members a whole input block at a time, with
            # no bound on the output: a member that lies about its size inflates as far as
            # it likes before its size can be checked. Keras and NumPy write stored or
            # deflated members; deflate is inflated at most file_size + 1 bytes below.
            method = {zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "LZMA"}.get(
                info.compress_type, f"method {info.compress_type}")
            raise UnsupportedModelError(
                f"Member {name!r} of {self.path!r} is compressed with {method}; unrolled reads "
                "stored and deflated members only (what Keras and NumPy write). Re-save the "
                "archive with ZIP_STORED or ZIP_DEFLATED.")
        try:
            with self._zip.open(info) as f:
                data = f.read(info.file_size + 1)     # deflate stops one byte past the size
        except (zipfile.BadZipFile, EOFError, ValueError, OSError, NotImplementedError,
                zlib.error) as e:
            raise ModelFileError(f"Member {name!r} of {self.path!r} cannot be read ({e}); the "
                                 "archive may be truncated or corrupted.") from None
        if len(data) != info.file_size:
            raise ModelFileError(f"Member {name!r} of {self.path!r} has {len(data)} bytes, "
                                 f"but its header declares {info.file_size}.")
        return data


def read_npy(data, name, path):
    """An array from ``.npy`` bytes: the header's shape is checked against the data, no pickle."""
    f = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    except (ValueError, EOFError, SyntaxError, TypeError) as e:
        raise ModelFileError(f"Array {name!r} in {path!r} has no valid .npy header ({e}).") from None
    if dtype.hasobject or dtype.kind not in "biuf":
        raise UnsafeModelError(
            f"Array {name!r} in {path!r} has dtype {dtype}; only numeric arrays are read "
            "(object arrays would need pickle, which is never used)."
        )
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    declared, present = count * dtype.itemsize, len(data) - f.tell()
    if declared != present:
        raise ModelFileError(
            f"Array {name!r} in {path!r} declares shape {shape} ({declared} bytes) but holds "
            f"{present} bytes of data: the file is truncated or corrupted."
        )
    flat = np.frombuffer(data, dtype=dtype, count=count, offset=f.tell()).copy()
    return flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)


H5PY_MISSING = ("Reading and writing .keras and .h5 files needs h5py: pip install "
                "'unrolled[h5]'. The .unrolled.npz format needs NumPy alone.")


def import_h5py():
    try:
        import h5py
    except ImportError:
        raise ImportError(H5PY_MISSING) from None
    return h5py


MAX_ATTR_ITEMS = 100_000           # an HDF5 attribute with more entries is corrupted


def read_attr(obj, name, default=None):
    """Attribute ``name`` of an HDF5 object from ``h5_sandbox.open_h5``; missing: ``default``.

    Its declared size was checked in the parsing process; an attribute that failed to read
    or failed the checks raises ``ModelFileError`` here, when it is asked for."""
    return obj.attrs[name] if name in obj.attrs else default


def check_dataset(ds, expected_shape, where, path, file_size, compression_ratio=None):
    """Raise unless HDF5 dataset ``ds`` holds numbers of ``expected_shape`` (None: any) and
    declares no more bytes than the file can hold (judged before anything is allocated)."""
    if ds.dtype.kind not in "biuf":
        raise ModelFileError(f"{path!r}: weight {where!r} has dtype {ds.dtype}; expected numbers.")
    if expected_shape is not None and tuple(ds.shape) != tuple(expected_shape):
        raise ModelFileError(
            f"{path!r}: weight {where!r} has shape {tuple(ds.shape)}, but the model expects "
            f"{tuple(expected_shape)}."
        )
    nbytes = math.prod(int(n) for n in ds.shape) * ds.dtype.itemsize     # no int64 wrap-around
    if nbytes > dataset_limit(file_size, ds.compression, compression_ratio):
        raise ModelFileError(
            f"{path!r}: weight {where!r} declares shape {tuple(ds.shape)} ({nbytes} bytes), "
            f"more than the file ({file_size} bytes) can hold."
        )
    return nbytes


def dataset_limit(file_size, compressed, compression_ratio=None):
    """The most bytes a dataset of a ``file_size``-byte HDF5 file can really hold."""
    ratio = MAX_COMPRESSION_RATIO if compression_ratio is None else compression_ratio
    return file_size * (ratio if compressed else 1) + 4096


def weights_budget(file_size):
    """The most bytes of weights a model read from a ``file_size``-byte file can declare:
    what its datasets can hold (``dataset_limit``, compressed), plus room for small models."""
    return dataset_limit(file_size, True) + 2 ** 20


def read_dataset(ds, expected_shape, where, path, file_size):
    """The data of HDF5 dataset ``ds`` after ``check_dataset``."""
    check_dataset(ds, expected_shape, where, path, file_size)
    try:
        return np.asarray(ds[()])
    except (OSError, ValueError, RuntimeError) as e:
        raise ModelFileError(f"{path!r}: weight {where!r} cannot be read ({e}).") from None
