"""Configuration and logging: the pieces every other layer of demi may use."""
