"""The table of the layer classes in Keras 3 configs, and what their options' values mean.

``LAYERS`` lists every class that can be read or written: its ``unrolled`` class, the
snake-case name Keras uses for it in weight paths, and the options (constructor arguments)
that travel in its config. An option's value is converted by the kind its name implies:
``*activation`` ↔ a name such as ``"tanh"``, ``*_initializer`` ↔ a Keras initializer dict,
tuples ↔ lists. Options live on the layer or, for recurrent layers, on its cell. The writer
(``config_writer.layer_config``) and the reader (``config_reader.layer_from_config``) both
follow this table; the reader also uses ``NEUTRAL`` (keys that must hold their neutral
value: regularizers and constraints ``None``, ``sparse`` false, …) and ``IGNORED`` (keys
without effect on the numbers), and refuses any other key.

``"hard_sigmoid"`` names two formulas: Keras 3's ``clip(x / 6 + 0.5, 0, 1)`` and, in files
Keras 1 or 2 (tf.keras 2 included) wrote, ``clip(0.2 x + 0.5, 0, 1)``, unrolled's
``"hard_sigmoid_keras2"``. The loaders say which one the file means (``hard_sigmoid_for``,
from its ``keras_version``); configs unrolled writes name the Keras 2 one
``"hard_sigmoid_keras2"``, except legacy ``.h5`` files marked as Keras 2 (``keras_format``).
"""
import re

from .. import activations
from ..layers import (RNN, Activation, Add, Average, Bidirectional, Concatenate, Dense, Dot,
                      Dropout, Embedding, Flatten, InputLayer, Masking, Maximum, Minimum,
                      Multiply, Permute, RepeatVector, Reshape, StackedRNNCells, Subtract,
                      TimeDistributed)
from ..layers import COMPANION_MODULES
from ..layers.recurrent import CELL_RULES
from ..layers import registry
from ..layers.registry import CELL_TYPES

RNN_FLAGS = ("return_sequences", "return_state", "go_backwards", "stateful", "unroll",
             "zero_output_for_mask")

# class name: (unrolled class, Keras snake-case name, options in the config). The recurrent
# layers and their cells come from the cell registry (``layers.registry``).
LAYERS = {
    "InputLayer": (InputLayer, "input_layer", ()),
    "Dense": (Dense, "dense", ("units", "activation", "use_bias", "kernel_initializer",
                               "bias_initializer")),
    "Activation": (Activation, "activation", ("activation",)),
    "Flatten": (Flatten, "flatten", ()),
    "RNN": (RNN, "rnn", RNN_FLAGS),                                   # + "cell"
    "StackedRNNCells": (StackedRNNCells, "stacked_rnn_cells", ()),    # + "cells"
    "Bidirectional": (Bidirectional, "bidirectional", ("merge_mode",)),  # + "layer", "backward_layer"
    "TimeDistributed": (TimeDistributed, "time_distributed", ()),     # + "layer"
    "Embedding": (Embedding, "embedding", ("input_dim", "output_dim", "embeddings_initializer",
                                           "mask_zero")),
    "Masking": (Masking, "masking", ("mask_value",)),
    "Dropout": (Dropout, "dropout", ("rate", "noise_shape", "seed")),
    "RepeatVector": (RepeatVector, "repeat_vector", ("n",)),
    "Reshape": (Reshape, "reshape", ("target_shape",)),
    "Permute": (Permute, "permute", ("dims",)),
    "Concatenate": (Concatenate, "concatenate", ("axis",)),
    "Add": (Add, "add", ()),
    "Multiply": (Multiply, "multiply", ()),
    "Average": (Average, "average", ()),
    "Subtract": (Subtract, "subtract", ()),
    "Maximum": (Maximum, "maximum", ()),
    "Minimum": (Minimum, "minimum", ()),
    "Dot": (Dot, "dot", ("axes", "normalize")),
}


for _module in COMPANION_MODULES:                    # convolution, pooling, normalization, ...
    LAYERS.update(_module.KERAS_LAYERS)


def _add_cell_type(t):
    """The layer and cell classes of a cell type (``layers.registry``), built in or
    registered later."""
    LAYERS[t.name] = (t.layer, t.snake, RNN_FLAGS + t.options)
    LAYERS[t.cell_name] = (t.cell, t.cell_snake, t.options)


def _remove_cell_type(t):
    LAYERS.pop(t.name, None)
    LAYERS.pop(t.cell_name, None)


registry.on_register(_add_cell_type, _remove_cell_type)
NESTED = {"RNN": ("cell",), "StackedRNNCells": ("cells",), "TimeDistributed": ("layer",),
          "Bidirectional": ("layer", "backward_layer")}

# Keys that must hold the value that makes them irrelevant (else: unsupported option).
NEUTRAL = {"sparse": (False,), "ragged": (False,), "optional": (False,), "time_major": (False,),
           "data_format": ("channels_last", None), "quantization_config": (None,),
           "lora_rank": (None,), "activity_regularizer": (None,)}
NEUTRAL_SUFFIXES = ("_regularizer", "_constraint")
# Keys without effect on the computed numbers. ``batch_input_shape``/``batch_shape`` on a
# layer: Keras 2 used them only to make the Input of a Sequential's first layer (which
# ``graph._sequential`` reads before the layer is built); elsewhere (an Embedding inside a
# functional model) the layer takes the shape of the tensor it is called on, as in Keras.
IGNORED = {"implementation", "use_cudnn", "input_length", "lora_alpha", "batch_size",
           "build_config", "module", "registered_name", "shared_object_id", "input_dtype",
           "batch_input_shape", "batch_shape"}
FLOAT_DTYPES = ("float32", "float64")

# Keras initializer class: the config keys our initializer takes (others must be None).
INITIALIZERS = {"Zeros": (), "Ones": (), "Constant": ("value",), "GlorotUniform": ("seed",),
                "GlorotNormal": ("seed",), "HeUniform": ("seed",), "HeNormal": ("seed",),
                "LecunNormal": ("seed",), "LecunUniform": ("seed",),
                "Orthogonal": ("gain", "seed"), "Identity": ("gain",),
                "RandomNormal": ("mean", "stddev", "seed"),
                "RandomUniform": ("minval", "maxval", "seed"),
                "TruncatedNormal": ("mean", "stddev", "seed"),
                "VarianceScaling": ("scale", "mode", "distribution", "seed")}
INIT_ALIASES = {"zeros": "Zeros", "ones": "Ones", "glorot_uniform": "GlorotUniform",
                 "glorot_normal": "GlorotNormal", "he_uniform": "HeUniform",
                 "he_normal": "HeNormal", "lecun_normal": "LecunNormal",
                 "lecun_uniform": "LecunUniform", "orthogonal": "Orthogonal",
                 "identity": "Identity", "random_normal": "RandomNormal",
                 "random_uniform": "RandomUniform", "uniform": "RandomUniform",
                 "normal": "RandomNormal", "constant": "Constant",
                 "truncated_normal": "TruncatedNormal", "variance_scaling": "VarianceScaling",
                 # Keras 3.2-3.4 wrote these class names
                 "OrthogonalInitializer": "Orthogonal", "IdentityInitializer": "Identity"}
# Every name unrolled.activations gives layers, its aliases ("silu", "hard_swish") included.
ACTIVATIONS = activations.names()
KERAS2_HARD_SIGMOID = "hard_sigmoid_keras2"


def hard_sigmoid_for(keras_version, legacy):
    """The activation ``"hard_sigmoid"`` means in a file written by Keras ``keras_version``
    (the file's attribute: str, bytes or None when absent): Keras 3's ``"hard_sigmoid"`` from
    version 3 on, else ``"hard_sigmoid_keras2"``. Without a version, a legacy ``.h5`` is Keras
    2's (Keras 3 always writes one) and a ``.keras`` archive Keras 3's. None: the version
    cannot be read, so a file that uses ``"hard_sigmoid"`` is refused."""
    if keras_version is None:
        return KERAS2_HARD_SIGMOID if legacy else "hard_sigmoid"
    if isinstance(keras_version, bytes):
        keras_version = keras_version.decode("latin-1")
    if not isinstance(keras_version, str):
        return None
    m = re.match(r"\s*(\d+)(?:[.\s+-]|$)", keras_version)   # "2.2.4", "2.2.4-tf", "3.15.1"
    if m is None:
        return None
    return "hard_sigmoid" if int(m.group(1)) >= 3 else KERAS2_HARD_SIGMOID


def activation_users(config, name):
    """The names of the layers and cells in a (model or layer) config whose activation
    options equal ``name``, in config order."""
    found = []

    def visit(obj, owner):
        if isinstance(obj, dict):
            owner = obj["name"] if isinstance(obj.get("name"), str) and "class_name" not in obj \
                else owner
            for key, value in obj.items():
                if key.endswith("activation") and value == name and owner not in found:
                    found.append(owner)
                visit(value, owner)
        elif isinstance(obj, list):
            for value in obj:
                visit(value, owner)

    visit(config, None)
    return found


def rename_activation(config, old, new):
    """A copy of ``config`` whose activation options ``old`` read ``new``."""
    if isinstance(config, dict):
        return {k: new if k.endswith("activation") and v == old else rename_activation(v, old, new)
                for k, v in config.items()}
    if isinstance(config, list):
        return [rename_activation(v, old, new) for v in config]
    return config


def supported_classes():
    return sorted(LAYERS)


def snake_name(class_name):
    return LAYERS[class_name][1]


def rule_keys(cls):
    """The ``<weight>_regularizer``/``<weight>_constraint`` options a layer class takes
    (``Layer.weight_rules``; a recurrent layer's are its cell's)."""
    if any(cls is t.layer for t in CELL_TYPES):
        return CELL_RULES
    return tuple(f"{p}_{k}" for p in getattr(cls, "weight_rules", ())
                 for k in ("regularizer", "constraint"))
