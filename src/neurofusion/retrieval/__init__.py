"""Feature library and similar-subject retrieval (PAPER.md section 2).

Modules: :mod:`.library` (the SQLite feature library: write, read), :mod:`.search`
(Euclidean distances, nearest neighbours, a library subject's neighbours),
:mod:`.metrics` (precision@k, recall@k, average precision, the class-prior baseline),
:mod:`.evaluate` (leak-free per-fold evaluation, the raw-feature baseline, summaries) and
:mod:`.command` (``neurofusion retrieve``).
"""
