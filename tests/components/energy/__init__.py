"""Tests of energy, mirroring components/energy/."""
