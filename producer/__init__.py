"""Producers: API clients, the shared poll loop and publisher, and one package per producer."""
