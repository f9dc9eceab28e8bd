"""trainmatch: competence-assessment survey → cohorts → individualised training plans."""

__version__ = "0.1.0"
