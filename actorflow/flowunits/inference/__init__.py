"""ONNX Runtime inference units."""
