"""Group quality control: the QC table, the exclusion list and QC-FC.

Modules: :mod:`.outputs` (file names), :mod:`.motion` (motion summaries and exclusion
rules), :mod:`.qcfc` (QC-FC and its distance dependence), :mod:`.group` (the group
step, end to end).
"""
