"""Helpers of start_pipeline.py that are not process handling (its status line)."""
