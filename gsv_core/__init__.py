"""gsv_core: a clean, weight-compatible implementation of GPT-SoVITS inference.

Importing this package does no work: models, dictionaries and weights are loaded
only by the objects that own them.
"""

__version__ = "0.1.0"
