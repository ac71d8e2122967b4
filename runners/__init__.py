"""anew.runners: the run life cycle (training loop, evaluation, checkpoints, the ``anew`` command); from Python,
use ``anew.train``, ``anew.load_agent`` and ``anew.evaluate`` (:mod:`anew.runners.api`)."""
