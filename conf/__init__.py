"""Hydra config groups of `synpo` (a package so that installed wheels carry them as `synpo.conf`)."""
