"""producer.macro: FRED series observations and metadata to macro.observations."""
