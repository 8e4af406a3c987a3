"""Deployment: ONNX export, int8 quantization, benchmarks, packaging, and the one predictor."""
