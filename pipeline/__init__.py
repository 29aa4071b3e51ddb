"""Operating the pipeline: data freshness, the monitor service and the status screen."""
