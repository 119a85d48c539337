"""Data from files: loaders, transform pipelines, the preprocessing cache, augmentations."""
