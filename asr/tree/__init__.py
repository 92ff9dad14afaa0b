"""Phonetic decision trees for tied context-dependent states (Kaldi's acc-tree-stats, cluster-phones, build-tree).

- :mod:`asr.tree.stats`: per-(context window, pdf class) Gaussian statistics from an alignment dir;
- :mod:`asr.tree.questions`: phone-set questions (clustering, word positions, a user file);
- :mod:`asr.tree.build`: greedy likelihood splitting and post-merging;
- :mod:`asr.tree.tree`: the tree, its file (``tree.yaml``) and ``leaf(context, pdf_class)``;
- :mod:`asr.tree.show`: the human-readable dump of ``asr build-tree --show``.

See docs/TREE.md.
"""
