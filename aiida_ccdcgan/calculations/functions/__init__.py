"""Calcfunctions: small, pure steps recorded in the provenance graph."""
