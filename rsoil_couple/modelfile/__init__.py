"""The model file: TorchScript with an embedded ``rsoil_meta.json`` (docs/model_format.md)."""
