"""The simulated world: deterministic records per (site, day), their compact storage, listings and mutations."""
