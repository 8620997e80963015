"""Face recognition: YuNet detection, 5-point alignment, SFace embeddings, galleries."""
