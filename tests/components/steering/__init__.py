"""Tests of steering, mirroring components/steering/."""
