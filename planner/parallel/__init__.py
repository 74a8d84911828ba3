"""Parallelism: how a model is laid out over GPUs, what that costs in memory and in speed.

One concept per module, each importing only the ones above it in this list:

* :mod:`planner.parallel.layout`: the ``Layout`` dataclass and Megatron-LM's validity rules;
* :mod:`planner.parallel.memory`: bytes per GPU of a layout (``MemoryBreakdown``);
* :mod:`planner.parallel.throughput`: the multiplicative MFU factors of a layout;
* :mod:`planner.parallel.search`: the layout search (valid, fits, fastest first).
"""
