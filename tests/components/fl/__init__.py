"""Tests of fl, mirroring components/fl/."""
