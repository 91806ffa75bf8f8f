"""Customer lifetime value in the warehouse: data, a ZILN network, ONNX export and scoring."""

__version__ = "0.1.0"
