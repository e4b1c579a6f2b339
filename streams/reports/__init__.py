"""Citizen app reports (随手拍, Open311): validate, classify, place; they become case candidates."""
