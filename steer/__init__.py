"""steer: algebraic value editing for procgen maze policies."""

__version__ = "0.1.0"
