"""Components shipped with the package: datasets, models, criteria, metrics, loggers."""
