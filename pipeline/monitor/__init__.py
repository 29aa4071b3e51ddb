"""pipeline.monitor: lag, freshness and every service's figures once a minute; partition upkeep."""
