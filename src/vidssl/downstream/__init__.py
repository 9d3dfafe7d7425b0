"""Downstream tasks of the SEVERE benchmark: Charades and AVA."""
