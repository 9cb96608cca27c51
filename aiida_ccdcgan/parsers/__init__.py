"""Parsers of aiida-ccdcgan's CalcJobs."""
