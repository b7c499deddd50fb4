"""NAN7xx: what a Hugging Face Trainer, Lightning or TensorBoard run's logged scalars show."""
