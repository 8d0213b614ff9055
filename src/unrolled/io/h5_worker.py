"""The HDF5 parsing process of ``h5_sandbox``, run as ``python -m unrolled.io.h5_worker``.

It reads requests on stdin and answers on stdout, both as frames: an 8-byte little-endian
length, then that many bytes. A request is two frames, a JSON header (``path`` for the
messages and the limits) and the file's bytes; a reply is two frames, a JSON header
(``{"tree": ...}`` or ``{"error": class name, "message": ...}``) and a blob of ``.npy``
arrays that the tree points into by ``[offset, length]``. Nothing is pickled: attribute
values travel as typed JSON (``encode``). The process ends at the end of stdin.
"""
import io
import json
import math
import os
import signal
import struct
import sys

import numpy as np

from .safety import H5PY_MISSING, ModelFileError, UnsafeModelError, check_dataset, dataset_limit

LENGTH = struct.Struct("<Q")
UNREADABLE = (OSError, ValueError, KeyError, RuntimeError, OverflowError, TypeError)
OVER_BUDGET = "its attributes and datasets hold more data in all than the file can"


# A chunk may be larger than a small dataset (h5py's chunk guess rounds up), by this much.
CHUNK_SLACK = 2 ** 20


def chunk_bytes(ds):
    """Bytes of one chunk of ``ds`` (0 when it is not chunked): the HDF5 library inflates a
    whole chunk to read any part of it, whatever the dataset's own size."""
    chunks = ds.chunks
    if not chunks:
        return 0
    n = ds.dtype.itemsize
    for c in chunks:
        n *= int(c)
    return n


def read_frame(f):
    """The next frame of the binary stream ``f``; None at its end."""
    head = f.read(LENGTH.size)
    if len(head) < LENGTH.size:
        return None
    (n,) = LENGTH.unpack(head)
    data = f.read(n)
    return data if len(data) == n else None


def write_frame(f, parts):
    f.write(LENGTH.pack(sum(len(p) for p in parts)))
    for part in parts:
        f.write(part)


class Snapshot:
    """One file's tree as JSON-ready nodes, and the blob parts their arrays point into."""

    def __init__(self, h5py, path, file_size, limits):
        self.h5py, self.path, self.file_size = h5py, path, file_size
        self.max_items = limits["max_attr_items"]
        self.ratio = limits["max_compression_ratio"]
        self.left = dataset_limit(file_size, True, self.ratio)   # bytes that may still be read
        self.parts, self.offset = [], 0

    def walk(self, group, prefix, todo):
        """The group's node, refusing links and outside storage; its objects go to ``todo``."""
        h5py = self.h5py
        node = {"kind": "group", "members": {}}
        todo.append((node, group, prefix or "/"))
        for key in group.keys():
            where = f"{prefix}/{key}"
            link = group.get(key, getlink=True)
            if isinstance(link, (h5py.SoftLink, h5py.ExternalLink)):
                raise UnsafeModelError(
                    f"{self.path!r} holds an HDF5 {type(link).__name__} at {where!r}; links can "
                    "point at other files or objects and are refused."
                )
            obj = group.get(key)
            if isinstance(obj, h5py.Group):
                node["members"][key] = self.walk(obj, where, todo)
            elif isinstance(obj, h5py.Dataset):
                if obj.external or obj.is_virtual:
                    raise UnsafeModelError(
                        f"{self.path!r}: dataset {where!r} stores its data outside the file "
                        "(external or virtual storage); refused."
                    )
                node["members"][key] = {"kind": "dataset"}
                todo.append((node["members"][key], obj, where))
            else:
                raise ModelFileError(f"{self.path!r}: unexpected HDF5 object at {where!r}.")
        return node

    def fill(self, node, obj, where):
        node["attrs"] = {}
        for name in obj.attrs.keys():
            try:
                node["attrs"][name] = self.encode(self.attr(obj.attrs, name), name)
            except ModelFileError as e:        # raised in the parent if it asks for this one
                node["attrs"][name] = {"t": "error", "message": str(e)}
        if node["kind"] == "dataset":
            self.dataset(node, obj, where)

    def attr(self, attrs, name):
        """An attribute's value after checking its declared size: a corrupted header can
        declare billions of entries, which h5py would allocate and convert for minutes."""
        def unreadable(e):
            return ModelFileError(f"{self.path!r}: attribute {name!r} cannot be read ({e}).")
        try:
            aid = attrs.get_id(name)
            count = math.prod(int(n) for n in aid.shape) if aid.shape else 1
        except UNREADABLE as e:
            raise unreadable(e) from None
        try:
            storage = aid.get_storage_size() if count else 0
        except (OSError, RuntimeError):          # HDF5 calls an empty attribute's storage an error
            storage = 0
        if count > self.max_items or storage > self.file_size:
            raise ModelFileError(
                f"{self.path!r}: attribute {name!r} declares {count} entries ({storage} bytes), "
                f"more than a model file of {self.file_size} bytes can hold."
            )
        try:
            value = attrs[name]
        except UNREADABLE as e:
            raise unreadable(e) from None
        if not self.spend(_nbytes(value)):
            raise ModelFileError(f"{self.path!r}: attribute {name!r} is not read: {OVER_BUDGET}.")
        return value

    def encode(self, v, name):
        """Typed JSON for an attribute value: str, bytes, numbers, arrays of strings."""
        if isinstance(v, str):
            return {"t": "str", "v": str(v), "numpy": isinstance(v, np.str_)}
        if isinstance(v, bytes):
            return {"t": "bytes", "v": v.decode("latin-1"), "numpy": isinstance(v, np.bytes_)}
        if isinstance(v, (np.ndarray, np.generic)):
            if v.dtype.kind in "biuf":
                return {"t": "npy", "at": self.add(np.asarray(v)), "scalar": np.ndim(v) == 0
                        and isinstance(v, np.generic)}
            if v.dtype.kind == "S":
                return {"t": "S", "itemsize": v.dtype.itemsize, "shape": list(v.shape),
                        "v": [b.decode("latin-1") for b in v.ravel().tolist()]}
            if v.dtype.kind == "O" and all(isinstance(x, (str, bytes)) for x in v.flat):
                return {"t": "O", "shape": list(v.shape),
                        "v": [self.encode(x, name) for x in v.flat]}
        raise ModelFileError(f"{self.path!r}: attribute {name!r} holds a {type(v).__name__} "
                             f"of dtype {getattr(v, 'dtype', None)}, which model files do not use.")

    def dataset(self, node, ds, where):
        """Shape, dtype and compression; the data too when ``check_dataset`` passes (else the
        parent's ``read_dataset`` raises the same error before it asks for the data)."""
        try:
            node.update(shape=None if ds.shape is None else list(ds.shape), dtype=ds.dtype.str,
                        compression=ds.compression)
            nbytes = check_dataset(ds, None, where, self.path, self.file_size, self.ratio)
        except ModelFileError:
            return
        except UNREADABLE as e:
            node["error"] = f"{self.path!r}: dataset {where!r} cannot be read ({e})."
            return
        chunk = chunk_bytes(ds)
        if chunk > max(nbytes, CHUNK_SLACK):
            node["error"] = (f"{self.path!r}: dataset {where!r} is stored in chunks of {chunk} "
                             f"bytes, more than the dataset's {nbytes}: reading it would "
                             "inflate a whole chunk. The file is corrupted or hostile.")
            return
        if not self.spend(nbytes):
            node["read_error"] = OVER_BUDGET
            return
        try:
            data = np.asarray(ds[()])
            if data.dtype.kind not in "biuf":
                raise ValueError(f"its data reads as dtype {data.dtype}")
            node["data"] = self.add(data)
        except Exception as e:  # noqa: BLE001 - the parent's read_dataset reports it
            node["read_error"] = str(e) or type(e).__name__

    def spend(self, nbytes):
        self.left -= nbytes
        return self.left >= 0

    def add(self, array):
        """Append ``array`` to the blob as ``.npy`` bytes; its ``[offset, length]``."""
        buf = io.BytesIO()
        np.lib.format.write_array(buf, array, allow_pickle=False)
        self.parts.append(buf.getvalue())
        self.offset += len(self.parts[-1])
        return [self.offset - len(self.parts[-1]), len(self.parts[-1])]


def _nbytes(v):
    if isinstance(v, (str, bytes)):
        return len(v)
    a = np.asarray(v)
    if a.dtype.kind == "O":
        return sum(len(x) if isinstance(x, (str, bytes)) else 8 for x in a.flat)
    return a.nbytes


def snapshot(data, path, limits):
    """The tree and blob parts of HDF5 file ``data``; refused files raise ModelFileError."""
    import h5py

    snap = Snapshot(h5py, path, len(data), limits)
    try:
        with h5py.File(io.BytesIO(data), "r") as f:
            todo = []
            tree = snap.walk(f, "", todo)
            for node, obj, where in todo:
                snap.fill(node, obj, where)
    except ModelFileError:
        raise
    except UNREADABLE as e:
        raise ModelFileError(f"{path!r} is not a readable HDF5 file ({e}); it may be "
                             "truncated or corrupted.") from None
    return tree, snap.parts


def handle(request, data):
    """The reply header and blob parts for one request."""
    path = request["path"]
    try:
        tree, parts = snapshot(data, path, request)
        return {"tree": tree}, parts
    except ModelFileError as e:
        return {"error": type(e).__name__, "message": str(e)}, []
    except Exception as e:  # noqa: BLE001 - as saving.model_files's reader boundary words it
        return {"error": "ModelFileError", "message": f"{path!r} could not be read: "
                f"{type(e).__name__}: {e}. The file may be truncated or corrupted."}, []


def die_with_parent(parent):
    """End this process when ``parent`` (the pid that started it) is gone.

    The worker can be stuck in the HDF5 library, holding the GIL (a file that loops
    forever): no thread of its own could notice that its parent was killed meanwhile, and
    it would spin at 100% CPU for good. On Linux the kernel kills it instead when the parent
    exits (``prctl(PR_SET_PDEATHSIG, SIGKILL)``; strictly, when the parent's thread that
    started it exits: the next load then starts a new worker). Elsewhere the worker ends at
    its next request when the pipe is closed, as before. A parent already gone when this
    runs (it died while we started) ends us at once."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)      # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if parent is not None and os.getppid() != parent:
        os._exit(0)


def main():
    signal.signal(signal.SIGINT, signal.SIG_IGN)       # Ctrl-C stops the parent, which stops us
    die_with_parent(int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else None)
    out = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)                                   # a stray print can't garble a reply
    os.close(null)
    try:
        import h5py  # noqa: F401
        ready = {"ready": True}
    except ImportError as e:
        ready = {"error": "ImportError", "message": f"{H5PY_MISSING} ({e})"}
    write_frame(out, [json.dumps(ready).encode()])
    out.flush()
    while "error" not in ready:
        header = read_frame(sys.stdin.buffer)
        data = None if header is None else read_frame(sys.stdin.buffer)
        if data is None:
            return
        reply, parts = handle(json.loads(header), data)
        del data
        write_frame(out, [json.dumps(reply).encode()])
        write_frame(out, parts)
        out.flush()


if __name__ == "__main__":
    main()
