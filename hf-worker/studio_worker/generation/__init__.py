"""Video generation for ``text_to_video``: the diffusers pipeline (loaded once per process) and MP4 output.

Imports torch/diffusers lazily: a CPU-only worker image has neither, and never imports this package.
"""
