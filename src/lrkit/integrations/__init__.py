"""Glue for the trainers people already use (each module imports its framework).

- :mod:`lrkit.integrations.lightning`: :class:`LRMonitorCallback` for PyTorch Lightning.
- :mod:`lrkit.integrations.hf`: :func:`create_optimizer_and_scheduler` for the Hugging Face
  ``Trainer`` (``optimizers=(optimizer, scheduler)``).

``lrkit.torch.LRScheduler`` itself needs no glue: return it from Lightning's
``configure_optimizers`` with ``"interval": "step"``, or hand it to HF's ``Trainer``.
"""
