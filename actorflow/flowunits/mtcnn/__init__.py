"""MTCNN face detection as graph units (P-Net pyramid, R-Net, O-Net)."""
