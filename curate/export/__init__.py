"""Export: final annotations as TRL's dataset formats, with provenance and a dataset card."""
