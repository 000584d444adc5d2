"""Property specifications (VNN-LIB)."""

from .vnnlib import Case, Property, load_vnnlib, parse_vnnlib

__all__ = ["Case", "Property", "load_vnnlib", "parse_vnnlib"]
