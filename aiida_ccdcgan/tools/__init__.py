"""Helpers that act on the provenance graph: dataset import, export, summaries and splits."""
