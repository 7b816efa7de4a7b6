"""steer's version, in one place: run folders, vector files and provenance record it."""

__version__ = "0.2.0"
