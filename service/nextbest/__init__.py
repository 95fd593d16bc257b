"""nextbest: a contextual-bandit decision service for AI agents."""

__version__ = "0.1.0"
