"""Renderers of leakscope's data objects."""
