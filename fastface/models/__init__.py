"""Models: what the method runs on.

- :mod:`fastface.models.checkpoints`: the registry of distilled SDXL checkpoints and the loaders;
  :mod:`fastface.models.checkpoint_files` reads and checks their files.
- :mod:`fastface.models.pipeline`: the FastFace pipeline assembled on ``StableDiffusionXLPipeline``.
- :mod:`fastface.models.weights`: which real weights a command needs, where they are, the pre-flight.
- The offline worlds: :mod:`fastface.models.tiny` (random weights in the real layouts),
  :mod:`fastface.models.fullsize` (the full SDXL architecture, random weights) and
  :mod:`fastface.models.faceworld` (a small world trained here on face photos).
"""
