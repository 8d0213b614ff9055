"""Regularizers and constraints in files (issue 21.6): a model Keras saved with them loads,
predicts as Keras does (they never change outputs) and saves them back. The weight
regularizers and constraints train (issue 20.13, ``test_regularizers.py``); what unrolled
does not implement (an ``OrthogonalRegularizer`` as activity regularizer) makes training
refuse the model by name rather than ignore it; a custom regularizer is refused as code."""
import keras
import numpy as np
import pytest

from unrolled.io.safety import UnsafeModelError, UnsupportedModelError
from unrolled.models import load_model


def _keras_model():
    model = keras.Sequential([
        keras.Input((5, 3)),
        keras.layers.LSTM(4, kernel_regularizer=keras.regularizers.L2(0.01),
                          recurrent_constraint=keras.constraints.MaxNorm(2.0),
                          activity_regularizer=keras.regularizers.OrthogonalRegularizer(0.01),
                          name="lstm"),
        keras.layers.Dense(2, activity_regularizer=keras.regularizers.L1L2(0.1, 0.2),
                           bias_constraint=keras.constraints.NonNeg(), name="d")])
    rng = np.random.default_rng(4)
    model.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype("float32")
                       for w in model.get_weights()])
    return model


@pytest.mark.parametrize("ext", [".keras", ".h5"])
def test_files_with_regularizers_load_predict_and_save_them_back(tmp_path, ext, shared):
    if "model" not in shared:                   # one Keras model and run for both formats
        x = np.random.default_rng(5).standard_normal((3, 5, 3)).astype("float32")
        model = _keras_model()
        shared["model"] = model, x, model.predict(x, verbose=0)
    theirs, x, want = shared["model"]
    theirs.save(tmp_path / f"k{ext}")
    ours = load_model(tmp_path / f"k{ext}")
    np.testing.assert_allclose(ours.predict(x, verbose=0), want, atol=1e-6, rtol=1e-5)
    ours.save(tmp_path / f"again{ext}")
    back = keras.models.load_model(tmp_path / f"again{ext}", compile=False)
    lstm, dense = back.get_layer("lstm"), back.get_layer("d")
    assert type(lstm.kernel_regularizer).__name__ == "L2"
    assert type(lstm.cell.recurrent_constraint).__name__ == "MaxNorm"
    assert type(dense.activity_regularizer).__name__ == "L1L2"
    assert type(dense.bias_constraint).__name__ == "NonNeg"
    ours.compile(loss="mse", optimizer="sgd")
    assert type(ours.get_layer("lstm").kernel_regularizer).__name__ == "L2"   # trained with
    assert type(ours.get_layer("d").activity_regularizer).__name__ == "L1L2"  # (too)
    assert type(lstm.activity_regularizer).__name__ == "OrthogonalRegularizer"  # written back
    with pytest.raises(NotImplementedError, match="layer 'lstm' has activity_regularizer"):
        ours.fit(x, np.zeros((3, 2)), verbose=0)
    with pytest.raises(NotImplementedError, match="would ignore them"):
        ours.train_on_batch(x, np.zeros((3, 2)))


def test_a_custom_regularizer_is_refused(tmp_path):
    from unrolled.saving.graph import model_from_config
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, 3], "name": "in"}},
        {"class_name": "Dense", "config": {"name": "d", "units": 2, "kernel_regularizer": {
            "class_name": "MyReg", "module": "mypackage", "config": {},
            "registered_name": "Custom>MyReg"}}}]}}
    with pytest.raises(UnsafeModelError, match="custom object"):
        model_from_config(config)
    config["config"]["layers"][1]["config"]["kernel_regularizer"] = {"class_name": "Foo",
                                                                      "config": {}}
    with pytest.raises(UnsupportedModelError, match="built-in regularizers"):
        model_from_config(config)
