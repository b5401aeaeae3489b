"""Region time series and functional-connectivity matrices (Pearson, Fisher z).

Modules: :mod:`.outputs` (derivative names), :mod:`.atlas` (the label image on the BOLD
grid), :mod:`.timeseries` (region means and coverage), :mod:`.coverage` (the policy for
poorly covered or constant regions), :mod:`.matrices` (correlation matrices and their
TSV files), :mod:`.readers` (time series from other pipelines), :mod:`.derivatives`
(entry from existing derivatives), :mod:`.figures`, and :mod:`.connectome` (one
subject's step, end to end).
"""
