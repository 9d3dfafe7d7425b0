"""Training.

Training: the Lightning engine (`engine.fit`), the resumable loader (`loader`), pre-training as a
library call (`pretraining.run_pretraining`) and multi-stage schedules (`schedule`).  Import the
modules themselves; this package exports nothing so that importing one of them does not pull in the
others.
"""
