"""Data pipelines and degradations for training and evaluation."""
