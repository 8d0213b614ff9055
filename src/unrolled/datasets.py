"""``keras.datasets``: present by name, but unrolled loads none of them.

Keras downloads these files on first use; unrolled uses no network at run time. Nor does
it read Keras's cached copies in ``~/.keras/datasets/``: the text sets (``imdb.npz``,
``reuters.npz``) and CIFAR hold pickled Python objects, which unrolled never unpickles,
and the array-only ones (MNIST, Fashion-MNIST, Boston and California housing) are image or
tabular data outside a recurrent library's scope. So ``keras.datasets.<name>.load_data()``
raises an error that says how to load the data instead:

- load it once with Keras (or your own code) and keep it as plain arrays:
  ``np.savez("imdb_arrays.npz", x_train=..., y_train=...)`` (sequences padded with
  ``unrolled.utils.pad_sequences``), then ``np.load(path, allow_pickle=False)``;
- or use the small series shipped with unrolled (``unrolled.data``).
"""

_SETS = {
    "imdb": "pickled object arrays (reviews of different lengths)",
    "reuters": "pickled object arrays (newswires of different lengths)",
    "mnist": "image arrays",
    "fashion_mnist": "image arrays",
    "cifar10": "pickled Python batches",
    "cifar100": "pickled Python batches",
    "boston_housing": "tabular arrays",
    "california_housing": "tabular arrays",
}


class _Dataset:
    """``keras.datasets.<name>``: its functions explain how to get the data instead."""

    def __init__(self, name):
        self.__name__ = f"unrolled.datasets.{name}"
        self._name = name

    def _refuse(self, function):
        raise NotImplementedError(
            f"keras.datasets.{self._name}.{function}() is not available in unrolled: Keras "
            f"downloads this file ({_SETS[self._name]}) and unrolled uses no network and "
            "unpickles nothing. Load the data once with Keras and save it as plain arrays "
            "(np.savez, after unrolled.utils.pad_sequences for sequences), then read them "
            "with np.load(path, allow_pickle=False); see unrolled.datasets.")

    def load_data(self, *args, **kwargs):
        self._refuse("load_data")

    def get_word_index(self, *args, **kwargs):
        if self._name not in ("imdb", "reuters"):
            raise AttributeError(f"keras.datasets.{self._name} has no get_word_index.")
        self._refuse("get_word_index")

    def get_label_names(self, *args, **kwargs):
        if self._name != "reuters":
            raise AttributeError(f"keras.datasets.{self._name} has no get_label_names.")
        self._refuse("get_label_names")

    def __repr__(self):
        return f"<unrolled.datasets.{self._name}: load_data() explains how to load it>"


imdb, reuters, mnist, fashion_mnist, cifar10, cifar100, boston_housing, california_housing = (
    _Dataset(name) for name in _SETS)


def __getattr__(name):
    raise AttributeError(f"module 'unrolled.datasets' has no attribute '{name}'. Keras's "
                         f"datasets are {', '.join(_SETS)}; unrolled loads none of them "
                         "(see unrolled.datasets).")
