"""Pydantic models shared by handlers and the core."""
