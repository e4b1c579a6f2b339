"""Complaint text → taxonomy category with a confidence."""
from streams.classify.classifier import Classification, Classifier

__all__ = ["Classification", "Classifier"]
