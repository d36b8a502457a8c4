"""Test platforms for demi, one module each; this package imports none of them."""
