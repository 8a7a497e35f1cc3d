"""Serving a checkpoint: the ONNX export and its check, ONNX Runtime predict, the Hugging Face export."""
