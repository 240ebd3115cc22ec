"""Calibrations: file format, validation, verbal scale, shipped default, versioned store."""
