"""Portable context: export bundles (PAM v1.0 + companion files, sealed with age) and importers."""
