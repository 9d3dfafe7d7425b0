"""Run configuration: schemas and presets (`schema`), YAML and override parsing (`parse`).

The packaged presets live in ``config/presets/<method>/<name>.yaml`` (evaluation presets in
``config/presets/eval/``). Loading a training config needs the method's schema, which the method
registry owns: use `vidssl.methods.registry.load_config`.
"""
