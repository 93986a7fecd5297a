"""Renderers: leakscope's data in, text out (HTML pages, SVG charts)."""
