"""Attention: MultiHeadAttention (a layer with projections), ONNX Attention, rotary embeddings."""
