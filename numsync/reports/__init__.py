"""Renderers: plain data in, text out. They never print; the CLI does."""
