"""The public vocabulary of a job: pydantic models for layers, data set choice and training."""
