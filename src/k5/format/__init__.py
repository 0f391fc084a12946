"""The k5 file format: object model, network JSON, HDF5 storage, dtypes and graph checks."""
