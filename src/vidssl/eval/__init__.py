"""Evaluation: feature extraction, retrieval, linear probe, fine-tuning, fusion."""
