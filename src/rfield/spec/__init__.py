"""Layer lists: the Python API, compact strings, JSON and YAML files."""

from .parse import load_spec, parse_compact

__all__ = ["load_spec", "parse_compact"]
