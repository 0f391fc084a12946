"""Recurrent layers: LSTM, GRU, RNN (ONNX semantics, one layer per node)."""
