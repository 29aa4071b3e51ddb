"""The storage consumer: every topic into PostgreSQL, exactly once."""
