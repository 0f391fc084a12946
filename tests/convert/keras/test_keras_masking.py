"""Keras masks into recurrent layers (``Embedding(mask_zero=True)``, ``Masking``) as k5 ``sequence_lens``.

Oracle: Keras' own outputs on right-padded batches of different lengths. Each case also checks that the mask
matters (the unmasked computation differs), so a converter ignoring the mask fails.
"""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras", reason="the Keras converter tests need Keras")

from keras_helpers import assert_close  # noqa: E402

import k5  # noqa: E402
from k5.convert.keras import from_keras  # noqa: E402
from k5.errors import K5Error  # noqa: E402

# right-padded token ids: lengths 7, 3, 1, 5 (0 is padding)
IDS = np.array([[3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 0, 0, 0, 0], [5, 0, 0, 0, 0, 0, 0], [9, 9, 9, 9, 2, 0, 0]], np.int32)


def _randomize(model):
    rng = np.random.default_rng(1)
    for w in model.weights:
        w.assign((rng.standard_normal(w.shape) * 0.5).astype("float32"))
    return model


def _embedding_rnn(cls: str, return_sequences: bool, bidirectional: bool, stacked: bool = False):
    keras.utils.set_random_seed(0)
    i = keras.Input((IDS.shape[1],), dtype="int32")
    h = keras.layers.Embedding(20, 6, mask_zero=True)(i)
    h = keras.layers.Dropout(0.1)(h)
    if stacked:
        h = getattr(keras.layers, cls)(4, return_sequences=True)(h)
    rnn = getattr(keras.layers, cls)(5, return_sequences=return_sequences)
    h = (keras.layers.Bidirectional(rnn) if bidirectional else rnn)(h)
    return _randomize(keras.Model(i, h))


def _check(model, x) -> float:
    want = keras.ops.convert_to_numpy(model(x))
    converted = from_keras(model, x)
    got = k5.run(converted, [x])[converted.graph.outputs[0].name]
    return assert_close(got, want)


CASES = [("LSTM", False, False), ("LSTM", True, False), ("LSTM", True, True), ("GRU", False, True),
         ("GRU", True, False), ("SimpleRNN", False, False), ("SimpleRNN", True, True)]


@pytest.mark.parametrize(("cls", "return_sequences", "bidirectional"), CASES)
def test_embedding_mask_zero_into_rnn(cls: str, return_sequences: bool, bidirectional: bool) -> None:
    model = _embedding_rnn(cls, return_sequences, bidirectional)
    _check(model, IDS)


def test_mask_matters() -> None:
    """The padded rows' outputs differ from those of the same network run over the padding (no mask)."""
    model = _embedding_rnn("LSTM", False, False)
    plain = keras.layers.Embedding(20, 6, mask_zero=False)
    lstm = keras.layers.LSTM(5)
    i = keras.Input((IDS.shape[1],), dtype="int32")
    nomask = keras.Model(i, lstm(plain(i)))
    plain.set_weights(model.layers[1].get_weights())
    lstm.set_weights(model.layers[-1].get_weights())
    a, b = (keras.ops.convert_to_numpy(m(IDS)) for m in (model, nomask))
    assert np.abs(a[0] - b[0]).max() < 1e-6  # the full-length row agrees
    assert np.abs(a[1:] - b[1:]).max() > 1e-2  # the padded rows do not


def test_stacked_rnns_share_the_mask() -> None:
    _check(_embedding_rnn("GRU", False, False, stacked=True), IDS)


@pytest.mark.parametrize("return_sequences", [False, True])
def test_masking_layer(return_sequences: bool) -> None:
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(2).standard_normal((3, 6, 4)).astype("float32")
    x[1, 3:] = 0.0
    x[2, 1:] = 0.0
    i = keras.Input((6, 4))
    h = keras.layers.Dense(5)(keras.layers.Masking(mask_value=0.0)(i))
    model = _randomize(keras.Model(i, keras.layers.LSTM(3, return_sequences=return_sequences)(h)))
    _check(model, x)


def test_masked_model_through_onnxruntime() -> None:
    ort = pytest.importorskip("onnxruntime", reason="the ONNX path needs onnxruntime")
    model = _embedding_rnn("LSTM", True, True)
    want = keras.ops.convert_to_numpy(model(IDS))
    converted = from_keras(model, IDS)
    sess = ort.InferenceSession(k5.to_onnx(converted).SerializeToString(), providers=["CPUExecutionProvider"])
    assert_close(sess.run(None, {converted.graph.inputs[0].name: IDS})[0], want)


def test_mask_into_other_layers_refused() -> None:
    i = keras.Input((IDS.shape[1],), dtype="int32")
    h = keras.layers.Embedding(20, 6, mask_zero=True)(i)
    model = keras.Model(i, keras.layers.GlobalAveragePooling1D()(h))
    with pytest.raises(K5Error, match="mask"):
        from_keras(model, IDS)


def test_mask_into_go_backwards_refused() -> None:
    i = keras.Input((IDS.shape[1],), dtype="int32")
    h = keras.layers.Embedding(20, 6, mask_zero=True)(i)
    model = keras.Model(i, keras.layers.LSTM(3, go_backwards=True)(h))
    with pytest.raises(K5Error, match="go_backwards"):
        from_keras(model, IDS)


ROUND_TRIP = [("LSTM", False, False), ("LSTM", True, False), ("GRU", True, True), ("SimpleRNN", False, True)]


@pytest.mark.parametrize(("cls", "return_sequences", "bidirectional"), ROUND_TRIP)
def test_masked_model_to_keras(cls: str, return_sequences: bool, bidirectional: bool) -> None:
    """Keras -> k5 -> Keras: sequence_lens becomes a Keras mask again (K5SequenceMask) and matches the original."""
    from k5.convert.keras import to_keras

    model = _embedding_rnn(cls, return_sequences, bidirectional)
    want = keras.ops.convert_to_numpy(model(IDS))
    back = to_keras(from_keras(model, IDS))
    assert_close(keras.ops.convert_to_numpy(back(IDS)), want)


def test_masked_model_to_keras_saves_and_reloads(tmp_path) -> None:
    from k5.convert.keras import to_keras

    model = _embedding_rnn("LSTM", True, False)
    want = keras.ops.convert_to_numpy(model(IDS))
    path = tmp_path / "masked.keras"
    to_keras(from_keras(model, IDS)).save(path)
    reloaded = keras.saving.load_model(path)  # k5's layers are registered by importing k5.convert.keras
    assert_close(keras.ops.convert_to_numpy(reloaded(IDS)), want)
