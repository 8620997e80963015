"""Image units: decode, resize, letterbox, normalize, colour, crop, to-tensor."""
