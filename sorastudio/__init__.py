"""SoraStudio Cloud: the core shared by the API functions and the workers."""

__version__ = "0.1.0"
