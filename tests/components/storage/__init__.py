"""Tests of storage, mirroring components/storage/."""
