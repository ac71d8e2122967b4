"""Analysis of finished runs: aggregate metrics, score normalisation, run discovery, plots and reports.

Imports nothing of ``anew.runners`` (so notebooks and other tools can use it without the training
stack); the ``anew report`` command in ``anew.runners.report`` is a thin CLI over ``report``.
"""
