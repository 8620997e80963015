"""Video and image-directory sources, and file sinks (video, images, JSON lines)."""
