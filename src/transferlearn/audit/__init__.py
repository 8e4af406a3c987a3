"""Data quality before training: label errors, duplicates and leaks, imbalance, outliers (tl audit)."""
