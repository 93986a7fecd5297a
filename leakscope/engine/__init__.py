"""The leak engine: verdicts, explanations and the programs and calls they watch.

- :mod:`~leakscope.engine.model`: the data of a verdict (``LeakReport``, ``Culprit``, ``Holder``);
- :mod:`~leakscope.engine.signals`: census deltas and the rule that judges their trend;
- :mod:`~leakscope.engine.calls`: running the user's function (async, errors, warm-up);
- :mod:`~leakscope.engine.check`: :func:`check`, the adaptive verdict;
- :mod:`~leakscope.engine.explain`: culprits, holders, allocation sites, fix hints;
- :mod:`~leakscope.engine.watch`: the ``@no_leaks`` and ``@watch`` decorators;
- :mod:`~leakscope.engine.program`: ``leakscope run``, a whole program under observation.
"""
