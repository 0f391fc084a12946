"""Convolution and pooling: Conv, ConvTranspose, max/average/Lp/global/adaptive pooling."""
