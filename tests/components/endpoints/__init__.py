"""Tests of endpoints, mirroring components/endpoints/."""
