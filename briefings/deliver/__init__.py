"""Delivery: to the archive on disk (disk.py)."""
