"""synpo: self-boosting LLM alignment with synthetic preference data (SynPO, and SPA to come)."""

__version__ = "0.1.0"
