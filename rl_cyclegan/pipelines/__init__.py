"""Multi-stage experiment pipelines over the training, evaluation and export binaries."""
