"""Evaluation of FastFace runs (METHOD.md section 6): per-sample metrics into the store,
imports of existing generations, and the paper's tables, statistics and fronts.

- :mod:`fastface.evaluation.evaluate` — the metrics of ``fastface evaluate``: id_sim /
  face_detected / face_size (buffalo_l, with the dlib second opinion), clip_t, aesthetic,
  image_reward, fsc, and the ``Evaluator`` that loads their models;
  :mod:`~fastface.evaluation.runner` — the loop over a store, incremental and resumable (one
  atomic ``add_metrics`` per sample); :mod:`~fastface.evaluation.evaluate_ray` — the same on Ray.
- :mod:`fastface.evaluation.protocol` — ``--protocol release|corrected``: the release's
  evaluation choices (quirks included) and their corrections, as pure functions; the protocol is
  tagged on every metric row's model string.
- :mod:`fastface.evaluation.importer` — ``fastface import``: a folder of images + a config
  as a run without attention maps; :mod:`~fastface.evaluation.pairing` — ``--order`` and the
  pairing sanity check.
- :mod:`fastface.evaluation.report` — ``fastface report``: Tables 1-3, paired comparisons
  (:mod:`~fastface.evaluation.stats`: exact sign-flip test, Student-t interval, minimum n),
  Pareto fronts over IP-Adapter scales (Markdown, LaTeX, CSV, PNG/SVG;
  :mod:`~fastface.evaluation.report_format`, :mod:`~fastface.evaluation.report_fronts`).
- :mod:`fastface.evaluation.clip_scores`, :mod:`~fastface.evaluation.image_reward`,
  :mod:`~fastface.evaluation.face_scores` — the scorers; :mod:`~fastface.evaluation.tiny` —
  random-weight models in the real Hub layouts for offline tests.

See ``fastface/evaluation/README.md`` for the exact definitions and what the tiny world covers.
"""
