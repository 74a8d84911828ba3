"""scaleplan planner: pure math for LLM pretraining plans (numpy/scipy/pandas only, never torch)."""

__version__ = "0.1.0"
