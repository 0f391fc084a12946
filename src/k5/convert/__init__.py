"""Converters between k5 and frameworks. Each subpackage imports its framework inside functions only."""
