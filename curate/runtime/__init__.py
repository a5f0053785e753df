"""What runs the steps: models and embeddings, the local and Ray engines, the catalog of scorers and selectors."""
