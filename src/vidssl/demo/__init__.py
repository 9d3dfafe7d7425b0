"""The end-to-end demo.

The end-to-end demo: `run` (stages and settings), `evaluate` (features of every init on the same
clips, retrieval and linear probe), `report` (plots and the summary).
"""
