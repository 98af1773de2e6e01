"""The SoraStudio worker: claims tasks from the queue, runs their processor, writes results back."""

__version__ = "0.1.0"
