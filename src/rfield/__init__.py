"""rfield: exact receptive fields of convolutional networks.

    >>> import rfield
    >>> a = rfield.analyze("conv(3); conv(3); maxpool(2); conv(3)", input_size=(32, 32))
    >>> a.field().rf, a.field().jump
    ((8, 8), (Fraction(2, 1), Fraction(2, 1)))

Importing rfield imports no deep-learning framework and no plotting library.
"""

from .api import analyze, load_graph, set_op_handle
from .core import Analysis, Box, Finding, Graph, LayerField
from .core import ops as layers
from .errors import (
    MissingExtraError,
    QueryError,
    RfieldError,
    ShapeError,
    SpecError,
    TargetError,
    UnsupportedError,
)

__version__ = "0.1.0"

__all__ = [
    "Analysis", "Box", "Finding", "Graph", "LayerField", "MissingExtraError", "QueryError",
    "RfieldError", "ShapeError", "SpecError", "TargetError", "UnsupportedError", "analyze",
    "layers", "load_graph", "set_op_handle", "__version__",
]
