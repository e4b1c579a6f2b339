"""Sensor readings → incidents (sustained over-limit with hysteresis); device alerts → cases."""
