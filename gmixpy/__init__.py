"""gmixpy: a byte-level language model built from context-mixing compression (a port of gmix)."""
__version__ = "0.1.0"
