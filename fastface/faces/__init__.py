"""Face analysis: one protocol, three backends, the ID-photo rules and the alignment crop.

- :mod:`fastface.faces.base`: the analyzer protocol (:class:`~fastface.faces.base.FaceAnalyzer`),
  :class:`~fastface.faces.base.Face` and the errors.
- :mod:`fastface.faces.insightface`, :mod:`fastface.faces.dlib`, :mod:`fastface.faces.skimage`: the backends.
- :mod:`fastface.faces.photos`: ``make_analyzer``, reading ID photos, ``reference_face``, sample photos.
- :mod:`fastface.faces.align`: the ArcFace alignment crop and box helpers.

The backends:

- ``insightface``: ``FaceAnalysis(name="buffalo_l")``, the paper's model. It gives a 512-d
  ArcFace ``normed_embedding`` and 5 keypoints. Detection is retried with det sizes 640, 576,
  ..., 320 until a face is found (METHOD.md section 6). Its weights come from GitHub releases,
  so put them at ``<root>/models/buffalo_l/*.onnx`` (default root ``~/.insightface``).
- ``dlib``: ``dlib-bin`` + ``face-recognition-models``: the HOG detector on photos, the MMOD
  CNN detector on small (enlarged) images, 68-point landmarks and a ResNet 128-d embedder.
  Fully offline; the tiny world's default.
- ``skimage``: scikit-image's LBP frontal-face cascade. Detection only; its keypoints come
  from a template (``kps_estimated=True``).

Keypoints are always in insightface's order: left eye, right eye, nose tip, left mouth
corner, right mouth corner ("left" = smaller x in the image).
"""
