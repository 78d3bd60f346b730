"""One module per step of Algorithm 1. Each exposes `run(out, config, **inputs) -> counts`: it reads its
input artifacts (folders), writes its outputs into `out`, and returns counts for the manifest."""
