"""Fine-tuning: data preparation, GPT (s1) and SoVITS (s2) training in the official steps.

Training-only code: the inference modules of :mod:`gsv_core` never import this package, so
serving needs none of it. Modules:

* :mod:`.prepare` -- a ``wav|speaker|lang|text`` list -> phones, BERT, HuBERT, 32 kHz wav and
  semantic tokens per utterance, stored in the reference's ``prepared.npz`` / ``.json`` layout.
* :mod:`.s1_data`, :mod:`.s1_model`, :mod:`.s1` -- the GPT dataset and bucketed batches,
  its training forward (loss, accuracy, dropouts) and the optimisation loop.
* :mod:`.scaled_adam`, :mod:`.lr_schedule` -- the official s1 optimizer and schedule.
* :mod:`.precision`, :mod:`.distributed`, :mod:`.batch_size` -- Lightning's precisions (autocast,
  float16 loss scaling), DDP under ``torchrun``, the default batch size from free memory.
* :mod:`.run_s1` -- a GPT run from files: defaults, resume, the metrics file.
* :mod:`.checkpoints` -- the official s1 ``.ckpt`` export and the resumable training state.
* :mod:`.random_draws` -- recorded random draws fed back in call order (replays).
* :mod:`.replay` -- ``python -m gsv_core train-replay``: every stage of a training reference.
* SoVITS (s2): :mod:`.s2_model` (the generator in training form), :mod:`.discriminator`,
  :mod:`.s2_losses`, :mod:`.mel`, :mod:`.sovits_train` (one official D + G step),
  :mod:`.s2_data` (collate, bucket sampler), :mod:`.s2_loop` (a resumable run),
  :mod:`.s2_checkpoints` (the official exports and the training state), :mod:`.s2_replay`.
"""
