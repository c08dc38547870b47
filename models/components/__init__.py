"""Layers shared by several methods."""
