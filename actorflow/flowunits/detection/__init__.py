"""Detections container, NMS and visualization units."""
