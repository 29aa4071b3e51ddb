"""The analytics consumer: streaming indicators per series, exactly once."""
