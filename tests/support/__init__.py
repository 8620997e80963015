"""Test support code importable by test modules (pytest ``pythonpath = ["tests"]``)."""
