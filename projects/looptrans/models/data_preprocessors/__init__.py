"""Data preprocessors: batch, move to device and normalise the views."""

from .affordance_data_preprocessor import AffordanceDataPreprocessor

__all__ = ['AffordanceDataPreprocessor']
