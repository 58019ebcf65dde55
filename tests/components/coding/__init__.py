"""Tests of coding, mirroring components/coding/."""
