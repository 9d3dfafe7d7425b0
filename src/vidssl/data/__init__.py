"""Data layer: sources, catalogs, samplers, transforms, datasets, flow, LMDB, synthetic data."""
