"""Normalization layers: batch, layer, group, instance, RMS, Lp, mean-variance, LRN."""
