"""unrolled's version, in a module of its own so that any part of the package (the file
formats write it) can read it without importing the package's ``__init__``."""
__version__ = "0.1.0"
