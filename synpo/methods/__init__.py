"""Methods register by name (`method.name`); each composes stages into a run."""

from synpo.methods.spa import run as run_spa
from synpo.methods.synpo import run as run_synpo

METHODS = {"synpo": run_synpo, "spa": run_spa}
