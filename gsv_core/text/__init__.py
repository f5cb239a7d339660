"""The text frontend: normalization, G2P and language segmentation to GPT-SoVITS phones."""
