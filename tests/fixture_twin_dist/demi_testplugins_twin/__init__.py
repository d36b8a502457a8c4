"""The second "twin" platform, one module of its own."""
