"""Integrations with other frameworks (aiohttp); each module imports its framework."""
