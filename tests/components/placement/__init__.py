"""Tests of placement, mirroring components/placement/."""
