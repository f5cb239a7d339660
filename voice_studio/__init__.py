"""The GPT-SoVITS Voice Studio web app on top of :mod:`gsv_core`.

Layers, arrows pointing down only: ``server`` (flags, one FastAPI app) -> ``api`` (REST) and
``ui`` (Gradio tabs) -> ``service`` (every rule: limits, permissions, logging) -> the
``gsv_core`` inference and speaker libraries. Importing this package does no work.
"""
