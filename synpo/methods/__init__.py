"""Methods register by name (`method.name`); each composes stages into a run."""

from synpo.methods.offline_simpo import run as run_offline_simpo
from synpo.methods.sampling_ranking import run as run_sampling_ranking
from synpo.methods.seed_only import run as run_seed_only
from synpo.methods.self_rewarding import run as run_self_rewarding
from synpo.methods.sft import run as run_sft
from synpo.methods.spa import run as run_spa
from synpo.methods.synpo import run as run_synpo

METHODS = {
    "synpo": run_synpo,
    "spa": run_spa,
    "sft": run_sft,
    "offline_simpo": run_offline_simpo,
    "sampling_ranking": run_sampling_ranking,
    "self_rewarding": run_self_rewarding,
    "seed_only": run_seed_only,
}
