"""Flat start, alignment, cross-entropy training, priors and augmentation."""
