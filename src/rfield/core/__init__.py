"""The algebra: per-axis index rules, the graph and its analysis. No framework."""

from .analysis import Analysis, Finding, LayerField
from .graph import INPUT, Graph, Node
from .query import Box

__all__ = ["Analysis", "Box", "Finding", "Graph", "INPUT", "LayerField", "Node"]
