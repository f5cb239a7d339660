"""Fine-tuning: data preparation, GPT (s1) and SoVITS (s2) training that match the official steps.

Inference never imports this package. SoVITS: :mod:`.s2_model` (the generator in training
form), :mod:`.discriminator`, :mod:`.s2_losses`, :mod:`.mel`, :mod:`.sovits_train` (one
official D + G step), :mod:`.s2_replay` (checking the steps against the training reference).
"""
