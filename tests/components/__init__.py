"""Tests of the components: one folder per group, as components/ is laid out."""
