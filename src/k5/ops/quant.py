"""quant ops."""
