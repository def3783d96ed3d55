"""unlearn: an evaluation suite for machine unlearning in language models, run with pytest."""

__version__ = "0.1.0"
