"""Sweep recipes (`recipe/*.yaml`, run with `synpo -m +recipe=NAME`) and the home of sweep outputs."""
