"""Quantization: QuantizeLinear, DequantizeLinear, integer matmul/conv, QLinear ops."""
