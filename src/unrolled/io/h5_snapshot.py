"""The snapshot of an HDF5 file that ``h5_sandbox.open_h5`` returns: h5py's API, in memory.

The parsing process (``h5_worker``) sends back a JSON tree, one node per group and dataset
with its attributes as typed JSON, and a blob of ``.npy`` arrays the tree points into by
``[offset, length]``. ``H5Group`` (the file is its root group) and ``H5Dataset`` give the
part of h5py's API the readers use: ``attrs``, ``keys``, ``get``, ``[]``, ``in``,
``visititems``, ``shape``, ``dtype``, ``compression`` and ``ds[()]``. What failed in the
child fails here only when it is read, as it would with h5py: an attribute raises
``ModelFileError``, a dataset's data ``OSError``. Nothing is unpickled: arrays are read from
the blob with ``safety.read_npy``. ``close`` drops the blob.
"""
from collections.abc import Mapping

import numpy as np

from .safety import ModelFileError, read_npy


class SnapshotFile:
    """What the snapshot's objects share: the path for messages and the arrays' blob."""

    def __init__(self, path, blob):
        self.path, self.blob = path, blob

    def array(self, at, name):
        if self.blob is None:
            raise ValueError(f"{self.path!r} is closed.")
        return read_npy(memoryview(self.blob)[at[0]:at[0] + at[1]], name, self.path)

    def decode(self, value, name):
        """An attribute value from the child's typed JSON (see ``h5_worker.Snapshot.encode``)."""
        kind = value["t"]
        if kind == "error":
            raise ModelFileError(value["message"])
        if kind == "str":
            return np.str_(value["v"]) if value["numpy"] else value["v"]
        if kind == "bytes":
            raw = value["v"].encode("latin-1")
            return np.bytes_(raw) if value["numpy"] else raw
        if kind == "npy":
            array = self.array(value["at"], name)
            return array[()] if value["scalar"] else array
        if kind == "S":
            return np.array([v.encode("latin-1") for v in value["v"]],
                            dtype=f"S{max(1, value['itemsize'])}").reshape(value["shape"])
        if kind == "O":
            out = np.empty(len(value["v"]), dtype=object)
            out[:] = [self.decode(v, name) for v in value["v"]]
            return out.reshape(value["shape"])
        raise ModelFileError(f"{self.path!r}: attribute {name!r} has an unknown encoding.")


class H5Attrs(Mapping):
    """The attributes of a snapshot object; one that failed in the child raises
    ``ModelFileError`` when it is read (as h5py would fail only then)."""

    def __init__(self, values, file):
        self._values, self._file = values, file

    def __getitem__(self, name):
        return self._file.decode(self._values[name], name)

    def __contains__(self, name):
        return name in self._values

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)


class H5Group:
    """A snapshot of an HDF5 group (or the file): ``attrs``, ``keys``, ``get``, ``[]``,
    ``in``, ``visititems`` as in h5py; names may be paths (``"a/b"``, ``"/a"``)."""

    def __init__(self, node, file, name, root=None):
        self.name, self._file = name, file
        self._root = self if root is None else root
        self.attrs = H5Attrs(node.get("attrs", {}), file)
        prefix = name.rstrip("/") + "/"
        self._members = {
            key: (H5Group if child["kind"] == "group" else H5Dataset)(child, file, prefix + key,
                                                                      self._root)
            for key, child in node["members"].items()}

    def keys(self):
        return list(self._members)

    def __iter__(self):
        return iter(self._members)

    def __len__(self):
        return len(self._members)

    def __bool__(self):                          # as h5py: an empty group is still true
        return True

    def get(self, name, default=None):
        obj = self._root if name.startswith("/") else self
        for part in name.split("/"):
            if part in ("", "."):
                continue
            if not isinstance(obj, H5Group) or part not in obj._members:
                return default
            obj = obj._members[part]
        return obj

    def __contains__(self, name):
        return self.get(name) is not None

    def __getitem__(self, name):
        obj = self.get(name)
        if obj is None:
            raise KeyError(f"{name!r} is not in {self._file.path!r}.")
        return obj

    def visititems(self, fn):
        """``fn(relative name, object)`` for every object below, parents first, until it
        returns something other than None (then returned)."""
        for name, obj in self._walk(""):
            result = fn(name, obj)
            if result is not None:
                return result
        return None

    def _walk(self, prefix):
        for key, obj in self._members.items():
            yield prefix + key, obj
            if isinstance(obj, H5Group):
                yield from obj._walk(prefix + key + "/")

    def close(self):
        self._file.blob = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class H5Dataset:
    """A snapshot of an HDF5 dataset: ``attrs``, ``shape``, ``dtype``, ``compression`` and
    its data as ``ds[()]`` (an ``OSError`` when the child could not or would not read it)."""

    def __init__(self, node, file, name, root=None):
        self.name, self._node, self._file = name, node, file
        self.attrs = H5Attrs(node.get("attrs", {}), file)

    def _meta(self, key):
        if "error" in self._node:
            raise ModelFileError(self._node["error"])
        return self._node[key]

    @property
    def shape(self):
        shape = self._meta("shape")
        return None if shape is None else tuple(shape)

    @property
    def dtype(self):
        return np.dtype(self._meta("dtype"))

    @property
    def compression(self):
        return self._meta("compression")

    def __getitem__(self, key):
        self._meta("dtype")
        if "data" not in self._node:
            raise OSError(self._node.get("read_error", "its data was not read: it failed the "
                                                       "size checks"))
        return self._file.array(self._node["data"], self.name)[key]
