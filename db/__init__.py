"""Database schema: ordered SQL migrations and the command that applies them."""
