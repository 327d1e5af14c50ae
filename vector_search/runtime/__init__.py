"""Running exported models: ONNX Runtime sessions and the once-per-model export cache (image and sentence encoders)."""
