"""Photos to vectors: finding and decoding images, ImageNet classes, the image encoders, the embedding step (local, Ray)."""
