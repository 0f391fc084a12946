"""Sequence and optional ops: values that are lists of tensors, or may be absent."""
