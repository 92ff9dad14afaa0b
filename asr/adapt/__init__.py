"""Speaker adaptation: i-vectors (Kaldi's nnet3 recipe, in PyTorch).

- :mod:`asr.adapt.config`: the typed config (asr/conf/ivector.yaml).
- :mod:`asr.adapt.ubm`: splice + PCA feature transform, diagonal UBM and its EM.
- :mod:`asr.adapt.ivector`: the total variability model and its EM.
- :mod:`asr.adapt.model`: an extractor dir (ivector.yaml, ubm.pt, extractor.pt).
- :mod:`asr.adapt.train`: ``asr train-ivector``.
- :mod:`asr.adapt.online`: online (cumulative) and offline extraction.
- :mod:`asr.adapt.data`: i-vector dirs (``asr extract-ivectors``), model dirs that need them.
"""
