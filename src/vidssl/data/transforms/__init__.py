"""Clip transforms.

Clip transforms on uint8 ``T×H×W×C`` tensors: pixel ops (`ops`), the transform protocol (`core`),
crops (`geometric`), colour (`color`), their composition (`compose`), batched on-device
augmentation (`batched`, `device`) and the per-method view policies (`presets`).
"""
