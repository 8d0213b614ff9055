"""Custom layers and cells written once, the Keras way, for Keras and for unrolled.

``define(layers, ops)`` returns the classes built on ``layers.Layer`` with ``ops``: called
with ``keras.layers, keras.ops`` they are Keras layers (Keras never calls ``backward``),
with ``unrolled.layers, unrolled.ops`` unrolled's. ``LinearTanh`` is the worked example
of docs/custom-layers.md; ``MinimalRNNCell`` is the cell of Keras's RNN API docs (its
``"uniform"`` initializer spelled ``"random_uniform"``), with a step backward added.
"""
from types import SimpleNamespace


def define(layers, ops):
    class LinearTanh(layers.Layer):
        """y = tanh(x @ w + b) over the last axis of x."""

        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], self.units),
                                     initializer="glorot_uniform", name="w")
            self.b = self.add_weight(shape=(self.units,), initializer="zeros", name="b")

        def call(self, inputs):
            return ops.tanh(ops.matmul(inputs, self.w) + self.b)

        def backward(self, inputs, outputs, doutputs):
            dz = doutputs * (1 - outputs * outputs)         # y = tanh(z)
            dx = ops.matmul(dz, ops.transpose(self.w))      # z = x w + b
            x2 = ops.reshape(inputs, (-1, inputs.shape[-1]))
            dz2 = ops.reshape(dz, (-1, self.units))
            return dx, [ops.matmul(ops.transpose(x2), dz2), ops.sum(dz2, axis=0)]

        def get_config(self):
            return {**super().get_config(), "units": self.units}

    class PassThrough(layers.Layer):
        """x * 2 with the mask passed on (supports_masking)."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.supports_masking = True

        def call(self, inputs):
            return inputs * 2.0

    class MaskedMean(layers.Layer):
        """The mean over the unmasked steps; the output has no mask."""

        def call(self, inputs, mask=None):
            if mask is None:
                return ops.mean(inputs, axis=1)
            m = ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
            return ops.sum(inputs * m, axis=1) / ops.maximum(ops.sum(m, axis=1), 1.0)

        def compute_mask(self, inputs, mask=None):
            return None

    class NoisyScale(layers.Layer):
        """x * 3 in training, x otherwise (declares training, not mask)."""

        def call(self, inputs, training=None):
            return inputs * 3.0 if training else inputs

    class TopHalf(layers.Layer):
        """Softmax over the features, keeping the first half of them: no
        compute_output_shape (traced), and a weight added positionally."""

        def build(self, input_shape):
            self.scale = self.add_weight((input_shape[-1],), "ones")

        def call(self, inputs):
            parts = ops.split(ops.softmax(inputs * self.scale, axis=-1), 2, axis=-1)
            return parts[0]

    class Holder(layers.Layer):
        """A layer holding two Dense layers (tracked weights)."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.first = layers.Dense(4, activation="tanh", name="first")
            self.second = layers.Dense(2, name="second")

        def call(self, inputs):
            return self.second(self.first(inputs))

    class MinimalRNNCell(layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.state_size = units

        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(input_shape[-1], self.units),
                                          initializer="random_uniform", name="kernel")
            self.recurrent_kernel = self.add_weight(shape=(self.units, self.units),
                                                    initializer="random_uniform",
                                                    name="recurrent_kernel")

        def call(self, inputs, states):
            prev_output = states[0]
            h = ops.matmul(inputs, self.kernel)
            output = h + ops.matmul(prev_output, self.recurrent_kernel)
            return output, [output]

        def backward(self, inputs, states, output, new_states, doutput, dstates):
            dh = doutput + dstates[0]                   # the output is the new state
            dx = ops.matmul(dh, ops.transpose(self.kernel))
            dprev = ops.matmul(dh, ops.transpose(self.recurrent_kernel))
            return dx, [dprev], [ops.matmul(ops.transpose(inputs), dh),
                                 ops.matmul(ops.transpose(states[0]), dh)]

    class TwoStateCell(layers.Layer):
        """h = tanh(x W + h U), c = c + h; output h * 2 (output_size, a list state_size,
        get_initial_state, training declared)."""

        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.state_size = [units, units]
            self.output_size = units

        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], self.units), name="w")
            self.u = self.add_weight(shape=(self.units, self.units), name="u")

        def get_initial_state(self, batch_size=None):
            return [ops.ones((batch_size, self.units)) * 0.5,
                    ops.zeros((batch_size, self.units))]

        def call(self, inputs, states, training=False):
            h = ops.tanh(ops.matmul(inputs, self.w) + ops.matmul(states[0], self.u))
            c = states[1] + h
            out = h * 2.0 if training else h
            return out, [h, c]

        def backward(self, inputs, states, output, new_states, doutput, dstates,
                     training=False):
            h = new_states[0]
            dh = dstates[0] + dstates[1] + (doutput * 2.0 if training else doutput)
            dz = dh * (1 - h * h)
            return (ops.matmul(dz, ops.transpose(self.w)),
                    [ops.matmul(dz, ops.transpose(self.u)), dstates[1]],
                    [ops.matmul(ops.transpose(inputs), dz),
                     ops.matmul(ops.transpose(states[0]), dz)])

    return SimpleNamespace(**{k: v for k, v in locals().items() if isinstance(v, type)})
