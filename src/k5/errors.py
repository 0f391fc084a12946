"""The K5Error hierarchy.

Every failure k5 reports on purpose is a :class:`K5Error`. Messages name the file, the node (and its op), the
weight or the JSON path concerned, what was expected and what was received, in the form::

    model.k5: node 'layer1.0.conv1' (Conv): attribute 'pads' expects 4 ints. Received: pads=[1, 1]
"""

from __future__ import annotations

__all__ = [
    "AttrError",
    "ChecksumError",
    "ConversionError",
    "CycleError",
    "DanglingEdgeError",
    "DuplicateNameError",
    "FormatError",
    "GraphError",
    "HostileSizeError",
    "InputMismatchError",
    "JSONSyntaxError",
    "K5Error",
    "MissingDependencyError",
    "MissingEntryError",
    "MissingWeightError",
    "NotK5FileError",
    "OpError",
    "RunError",
    "SaveError",
    "SchemaError",
    "TruncatedFileError",
    "UnknownOpError",
    "UnsafeFileError",
    "UnsupportedOpsError",
    "UnsupportedTypesError",
    "VerificationError",
    "VersionError",
    "WeightError",
    "WeightMismatchError",
]


class K5Error(Exception):
    """Base class of every error k5 raises on purpose.

    ``where`` is a short location prefix (file, node, weight) that is prepended to the message.
    """

    def __init__(self, message: str, *, where: str | None = None) -> None:
        self.message = message
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)

    def located(self, where: str) -> K5Error:
        """Return the same error with an outer location (e.g. the file name) prepended."""
        inner = f"{where}: {self.where}" if self.where else where
        err = type(self).__new__(type(self))
        err.__dict__.update(self.__dict__)
        K5Error.__init__(err, self.message, where=inner)
        return err


# --- the file and its layout ---------------------------------------------------------------------------------
class FormatError(K5Error):
    """The file is not a well-formed k5 file."""


class NotK5FileError(FormatError):
    """The path is not an HDF5 file, or an HDF5 file without the k5 layout."""


class TruncatedFileError(FormatError):
    """The HDF5 file ends before its data does."""


class MissingEntryError(FormatError):
    """A required group or dataset (e.g. ``/model/network``) is absent."""


class JSONSyntaxError(FormatError):
    """The network JSON does not parse; the message gives line and column."""


class SchemaError(FormatError):
    """The network JSON parses but violates the schema; the message gives the JSON path."""


class VersionError(FormatError):
    """The file needs a newer k5 format or op set version than this reader supports."""


class UnsafeFileError(FormatError):
    """The file uses a feature refused for safety (external links, external or virtual datasets...)."""


class HostileSizeError(FormatError):
    """A declared size, count or depth exceeds what the file or the limits allow."""


# --- the graph -----------------------------------------------------------------------------------------------
class GraphError(K5Error):
    """The graph is structurally invalid."""


class DanglingEdgeError(GraphError):
    """A node input names a tensor that no node or graph input produces."""


class CycleError(GraphError):
    """The graph has a cycle, or its nodes are not in topological order."""


class DuplicateNameError(GraphError):
    """Two nodes share an id, or two producers share an output name."""


# --- weights -------------------------------------------------------------------------------------------------
class WeightError(K5Error):
    """A weight is wrong."""


class MissingWeightError(WeightError):
    """A weight declared in the network JSON is not stored in the file (or a required weight is absent)."""


class WeightMismatchError(WeightError):
    """A stored weight's shape or dtype differs from the declared one."""


class ChecksumError(WeightError):
    """A weight's bytes do not match its stored sha256."""


# --- ops and running -----------------------------------------------------------------------------------------
class OpError(K5Error):
    """An op is used wrongly."""


class UnknownOpError(OpError):
    """An op (or op version, or domain) is not in the op set this reader knows."""


class AttrError(OpError):
    """A node attribute is missing, unknown or of the wrong type."""


class RunError(K5Error):
    """A kernel failed while running a node."""


class InputMismatchError(RunError):
    """Inputs given to ``k5.run`` do not match the graph's declared inputs."""


# --- conversion ----------------------------------------------------------------------------------------------
class ConversionError(K5Error):
    """A converter cannot convert a model."""


class UnsupportedOpsError(ConversionError):
    """A model uses ops the converter does not support; lists every one with its count."""

    def __init__(self, framework: str, counts: dict[str, int], *, where: str | None = None) -> None:
        self.framework = framework
        self.counts = dict(counts)
        listing = ", ".join(f"{op} (x{n})" for op, n in sorted(counts.items()))
        super().__init__(f"{len(counts)} unsupported {framework} op(s): {listing}", where=where)


class UnsupportedTypesError(ConversionError):
    """A model uses element types outside k5 (string, int4, float4...); lists every one with its count."""

    def __init__(self, framework: str, counts: dict[str, int], *, where: str | None = None) -> None:
        self.framework = framework
        self.counts = dict(counts)
        listing = ", ".join(f"{t} (x{n})" for t, n in sorted(counts.items()))
        super().__init__(f"{len(counts)} {framework} element type(s) outside k5's dtypes: {listing}", where=where)


class VerificationError(ConversionError):
    """A converted model does not compute what the original did."""


# --- the environment -----------------------------------------------------------------------------------------
class MissingDependencyError(K5Error):
    """An optional framework (an extra such as ``k5[torch]``) is needed but not installed; names the extra."""


# --- writing -------------------------------------------------------------------------------------------------
class SaveError(K5Error):
    """A model could not be saved; any old file at the target is left intact."""
