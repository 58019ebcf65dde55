"""Tests of pricing, mirroring components/pricing/."""
