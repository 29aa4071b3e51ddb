"""The supervisor start_pipeline.py runs: processes, restarts, the status line, its state file."""
