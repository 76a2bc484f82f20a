"""The face world: a small SDXL-architecture pipeline *trained* here, offline, on real face
photos that ship in installed packages, so that every part of the workbench (faces in the
grid, attention on faces, ID similarity) runs on generated faces without real weights.

- :mod:`fastface.models.faceworld.scenes` — the identities (face crops of the shipped photos), the
  scene composer (face at two shot scales over coloured, textured backgrounds) and prompts.
- :mod:`fastface.models.faceworld.world` — model sizes, the shipped weights file, writing the world
  in the real Hub layouts (:func:`build_face_world`), the adapter key map.
- :mod:`fastface.models.faceworld.train` — the reproducible training (``fastface face-world --train``).

See ``MODEL_CARD.md`` beside this file for what the world is and is not.
"""
