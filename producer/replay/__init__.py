"""Recorded API responses served through the real client libraries (DATA_SOURCE=replay)."""
