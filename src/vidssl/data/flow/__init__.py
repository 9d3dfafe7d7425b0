"""Optical flow.

Optical flow: TV-L1 / Farneback estimation quantised like the CoCLR/ViCC releases (`extract`) and
parallel, resumable extraction over a dataset (`dataset`).
"""
